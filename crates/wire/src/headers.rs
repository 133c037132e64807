//! The header names of the contract, lower-case as HTTP/2 sends them (HTTP/1 field names
//! are case-insensitive, so these also match any other spelling).

/// The verified caller's claims (see [`crate::identity`]).
pub const IDENTITY_HEADER: &str = "fastgate-identity";
/// The feature flags the edge evaluated for this request.
pub const FLAGS_HEADER: &str = "fastgate-flags";
/// The request id; covered so a log line at the origin cannot be attributed to another request.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// RFC 9421 §4.1: the covered components and parameters of each signature, by label.
pub const SIGNATURE_INPUT_HEADER: &str = "signature-input";
/// RFC 9421 §4.2: the signature itself, by label.
pub const SIGNATURE_HEADER: &str = "signature";
/// The dictionary key of our signature in both `Signature-Input` and `Signature`; other
/// labels (another hop's signatures) may sit beside it and are ignored.
pub const LABEL: &str = "fastgate";
/// RFC 9530: the digest of the request body, covered by the signature whenever there is a
/// body, so a captured signature cannot carry another body (see [`crate::digest`]).
pub const CONTENT_DIGEST_HEADER: &str = "content-digest";
