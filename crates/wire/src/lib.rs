//! The contract between fastgate's edge and its origin, defined once.
//!
//! The edge verifies the caller and forwards what it verified as `Fastgate-Identity`, with
//! the evaluated `Fastgate-Flags`, under an RFC 9421 HTTP Message Signature (`hmac-sha256`
//! with a shared key). The origin trusts that identity only after recomputing the same
//! signature. Both sides must therefore build the same bytes from the same request: one
//! header name spelled differently, one component in another order, one claim encoded
//! another way, and either every request fails or, worse, the origin accepts something the
//! edge never vouched for. So nothing here is written twice: the edge signs and the origin
//! verifies through these modules, and [`test_vector`] pins two exact signatures (a GET
//! without a body, a POST with one) that both sides' tests check.
//!
//! On the wire:
//!
//! ```text
//! Fastgate-Identity: <base64url, no padding, of the compact JSON claims; `e30` ({}) when anonymous>
//! Fastgate-Flags: <name=value,...; may be empty>
//! X-Request-Id: <request id>
//! Content-Digest: sha-256=:<standard base64 of SHA-256(body)>:        (only with a body)
//! Signature-Input: fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id"[ "content-digest"]);created=<unix s>;expires=<unix s>;nonce="<22 base64url>";keyid="<kid>";alg="hmac-sha256"
//! Signature: fastgate=:<standard base64, padded, of HMAC-SHA256(secret, signature base)>:
//! ```
//!
//! A signature binds the request's body (its digest) and is usable once for a request that
//! changes state (its nonce): the origin refuses a body that does not match, a body the
//! signature does not cover, and a second use of the nonce of an unsafe method.
//!
//! - [`headers`]: the header names and the signature label.
//! - [`base`]: the two covered lists and the signature base (RFC 9421 §2.5).
//! - [`digest`]: the `Content-Digest` of a body (RFC 9530).
//! - [`method`]: which methods the edge forwards (exactly spelled) and which are safe.
//! - [`nonce`]: the nonce's form, which methods are replay-protected, and for how long.
//! - [`params`]: the signature parameters, the algorithm and the validity window.
//! - [`signature`]: the HMAC over the base, producing and checking the header values.
//! - [`identity`]: the `Fastgate-Identity` codec.
//! - [`IDEMPOTENCY_KEY_HEADER`], [`IDEMPOTENCY_REPLAYED_HEADER`]: the `Idempotency-Key`
//!   contract, by which the edge may send a POST again and the origin answers it once.
//!
//! The functions the edge calls are `#[inline]`, and so is the decoder only the origin
//! calls: that compiles each into its caller's crate, as when this code lived in the edge,
//! and keeps the edge's Wasm (its cold start) the size it was. Measured without them: about
//! 3 KB more, most of it a JSON decoder the edge never runs.

pub mod base;
pub mod digest;
pub mod email;
pub mod headers;
pub mod identity;
pub mod method;
pub mod nonce;
pub mod params;
pub mod signature;
#[doc(hidden)]
pub mod test_vector;

pub use base::{signature_base, Covered, Signed, COVERED_COMPONENTS, COVERED_WITH_BODY};
pub use digest::{content_digest, DIGEST_ALGORITHM};
pub use headers::{
    CONTENT_DIGEST_HEADER, FLAGS_HEADER, IDENTITY_HEADER, LABEL, REQUEST_ID_HEADER,
    SIGNATURE_HEADER, SIGNATURE_INPUT_HEADER,
};
pub use identity::{Claims, EdgeIdentity, IdentityError, ANONYMOUS_IDENTITY};
pub use nonce::{
    encode_nonce, is_valid_nonce, remember_until, replay_protected, NONCE_BYTES, NONCE_LEN,
};
pub use params::{unix_now, Params, ALGORITHM, CLOCK_SKEW_SECS, LIFETIME_SECS, MAX_WINDOW_SECS};
pub use signature::{sign, signature_value, verify, MacMismatch, SignatureHeaders};

/// The request header by which a client makes a POST or PATCH safe to send again
/// (draft-ietf-httpapi-idempotency-key-header). The origin stores the first answer under the
/// key and replays it, so the edge may retry a keyed request after an ambiguous failure;
/// lower-case, as the names in [`headers`].
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// Set to `true` by the origin on an answer replayed from its store for a repeated key.
pub const IDEMPOTENCY_REPLAYED_HEADER: &str = "idempotency-replayed";
