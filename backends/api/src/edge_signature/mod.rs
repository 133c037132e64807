//! The origin's side of the identity contract (`fastgate-wire`): every request except the
//! exempt paths must carry the edge's RFC 9421 HTTP Message Signature over the method,
//! path, query, `Fastgate-Identity`, `Fastgate-Flags` and `X-Request-Id`, and, when it has
//! a body, `Content-Digest`. The origin trusts the edge's identity instead of re-parsing
//! end-user tokens, so a request that reached it some other way must not get in: the check
//! runs as a layer on the whole router, before every handler, the 404/405 fallbacks and the
//! CORS preflight answer. A signature is bound to its body (the digest must match the bytes
//! received) and, for a request that changes state, usable once (its nonce).
//!
//! What is signed and how is the `fastgate_wire` crate's, shared with the edge; here are
//! only the origin's parts:
//! - `keys`: the shared keys from `FASTGATE_IDENTITY_KEYS` (`kid:secret,kid:secret`;
//!   several for rotation).
//! - `parse`: reading `Signature-Input` and `Signature` as structured-field dictionaries.
//! - `verify`: the checks (components, algorithm, key, window, MAC) and the identity;
//!   `error` says why one failed.
//! - `body`: the body against the signed `Content-Digest` (or against having none).
//! - `nonces`: the used nonces of unsafe requests, in the database every origin shares.
//! - `middleware`: the axum layer, in that order, and the one 401 every refusal gets
//!   (a replay included).
//!
//! `FASTGATE_VERIFY_EDGE_SIGNATURE=false` (or `--no-verify-edge-signature`) turns
//! enforcement off for a bare origin run; then `Fastgate-Identity` is ignored entirely and
//! only the bearer token counts.

mod body;
mod error;
mod keys;
mod middleware;
mod nonces;
mod parse;
mod verify;

pub use error::SignatureError;
pub use fastgate_wire::EdgeIdentity;
pub use keys::{IdentityKeys, KeysError, KEYS_VAR};
pub use middleware::{enforce, rejection, Gate, ENFORCE_VAR, EXEMPT_PATHS, REJECTION_DETAIL};
pub use nonces::{NonceError, NonceStore, PURGE_EVERY_SECS};
pub use parse::{parse_signature, parse_signature_input, SignatureParams};
pub use verify::{Verified, Verifier};
