//! The `Content-Digest` of a request body (RFC 9530), in the one form the contract uses:
//! `sha-256=:<standard base64, padded, of SHA-256(body)>:`. The edge computes it over the
//! bytes it sends and signs the header value; the origin recomputes it over the bytes it
//! received and compares the two values exactly. Without it a signature vouches for the
//! method, path and identity but not the body, so a captured signed write could be resent
//! with any body for as long as its window lasts.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// The one digest algorithm (RFC 9530 §5), as its dictionary key.
pub const DIGEST_ALGORITHM: &str = "sha-256";

/// The `Content-Digest` value for `body`.
#[inline]
pub fn content_digest(body: &[u8]) -> String {
    format!(
        "{DIGEST_ALGORITHM}=:{}:",
        STANDARD.encode(Sha256::digest(body))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_vector::POST;

    #[test]
    fn digests_as_rfc_9530_shows() {
        // RFC 9530 Appendix B.1: `{"hello": "world"}` followed by a newline.
        assert_eq!(
            content_digest(b"{\"hello\": \"world\"}\n"),
            "sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:"
        );
        assert_eq!(
            content_digest(b""),
            "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
        );
        let body = POST.body.unwrap();
        assert_eq!(Some(content_digest(body).as_str()), POST.content_digest);
        let mut other = body.to_vec();
        other[0] ^= 1;
        assert_ne!(Some(content_digest(&other).as_str()), POST.content_digest);
    }
}
