//! The origin's side of the identity contract (`fastgate-wire`): every request except the
//! exempt paths must carry the edge's RFC 9421 HTTP Message Signature over the method,
//! path, query, `Fastgate-Identity`, `Fastgate-Flags` and `X-Request-Id`. The origin trusts
//! the edge's identity instead of re-parsing end-user tokens, so a request that reached it
//! some other way must not get in: the check runs as a layer on the whole router, before
//! every handler, the 404/405 fallbacks and the CORS preflight answer.
//!
//! What is signed and how is the `fastgate_wire` crate's, shared with the edge; here are
//! only the origin's parts:
//! - `keys`: the shared keys from `FASTGATE_IDENTITY_KEYS` (`kid:secret,kid:secret`;
//!   several for rotation).
//! - `parse`: reading `Signature-Input` and `Signature` as structured-field dictionaries.
//! - `verify`: the checks (components, algorithm, key, window, MAC) and the identity;
//!   `error` says why one failed.
//! - `middleware`: the axum layer and the one 401 every refusal gets.
//!
//! `FASTGATE_VERIFY_EDGE_SIGNATURE=false` (or `--no-verify-edge-signature`) turns
//! enforcement off for a bare origin run; then `Fastgate-Identity` is ignored entirely and
//! only the bearer token counts.

mod error;
mod keys;
mod middleware;
mod parse;
mod verify;

pub use error::SignatureError;
pub use fastgate_wire::EdgeIdentity;
pub use keys::{IdentityKeys, KeysError, KEYS_VAR};
pub use middleware::{enforce, rejection, ENFORCE_VAR, EXEMPT_PATHS, REJECTION_DETAIL};
pub use parse::{parse_signature, parse_signature_input, SignatureParams};
pub use verify::Verifier;
