//! Why a request's edge signature was refused: logged in full, while the client only ever
//! sees [`super::REJECTION_DETAIL`] (a reason would tell an attacker which check to beat).

use axum::http::HeaderName;
use fastgate_wire::{IdentityError, COVERED_COMPONENTS, COVERED_WITH_BODY, MAX_WINDOW_SECS};

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("method {0:?} is not one the edge forwards")]
    Method(String),
    #[error("missing header {0}")]
    MissingHeader(HeaderName),
    #[error("header {0} is repeated")]
    RepeatedHeader(HeaderName),
    #[error("header {0} is not visible ASCII")]
    HeaderNotAscii(HeaderName),
    #[error("no `fastgate` member in {0}")]
    MissingLabel(HeaderName),
    #[error("`fastgate` member appears more than once in {0}")]
    RepeatedLabel(HeaderName),
    #[error("malformed Signature-Input: {0}")]
    MalformedInput(&'static str),
    #[error("malformed Signature: {0}")]
    MalformedSignature(&'static str),
    #[error("covered components are not exactly {COVERED_COMPONENTS:?} or {COVERED_WITH_BODY:?}")]
    CoveredComponents,
    #[error("algorithm {0:?} is not hmac-sha256")]
    Algorithm(String),
    #[error("unknown keyid {0:?}")]
    UnknownKeyId(String),
    #[error("created {created} is in the future (now {now})")]
    CreatedInFuture { created: u64, now: u64 },
    #[error("expired at {expires} (now {now})")]
    Expired { expires: u64, now: u64 },
    #[error(
        "validity window created={created} expires={expires} is empty or longer than {MAX_WINDOW_SECS} s"
    )]
    Window { created: u64, expires: u64 },
    #[error("signature does not match")]
    Mismatch,
    #[error("Fastgate-Identity is not base64url of a JSON object: {0}")]
    Identity(#[from] IdentityError),
    #[error("the request has a body its signature does not cover")]
    BodyNotCovered,
    #[error("the signature covers content-digest but the request has no body")]
    DigestWithoutBody,
    #[error("content-digest does not match the body received")]
    DigestMismatch,
    #[error("nonce {0:?} of an unsafe request was already used (a replay)")]
    Replay(String),
}
