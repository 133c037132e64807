//! The signature's `nonce` parameter (RFC 9421 §2.3): 16 random bytes, base64url without
//! padding (22 characters), fresh for every request the edge sends. The origin remembers
//! the nonces of requests that change state for as long as their signature could still be
//! accepted ([`remember_until`]), so a captured signed write cannot be replayed inside its
//! window. Safe methods are not remembered: a read changes nothing, and the edge itself
//! may legitimately send the same read again (a failover retry, a cache revalidation).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::params::CLOCK_SKEW_SECS;

/// Random bytes in a nonce.
pub const NONCE_BYTES: usize = 16;
/// Characters in an encoded nonce.
pub const NONCE_LEN: usize = 22;

/// The nonce for `bytes`.
#[inline]
pub fn encode_nonce(bytes: &[u8; NONCE_BYTES]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// True when `nonce` is exactly what [`encode_nonce`] produces: 22 base64url characters
/// that decode to 16 bytes (no padding, no other alphabet, no non-canonical final
/// character). The bound also caps what the origin stores per request.
pub fn is_valid_nonce(nonce: &str) -> bool {
    nonce.len() == NONCE_LEN
        && URL_SAFE_NO_PAD
            .decode(nonce)
            .is_ok_and(|b| b.len() == NONCE_BYTES)
}

/// True when the origin must refuse a second use of a request's nonce: every method but the
/// safe ones ([`crate::method::is_safe`]), so an unknown or extension method is treated as
/// a write. Methods are case-sensitive, so `get` is not `GET`.
#[inline]
pub fn replay_protected(method: &str) -> bool {
    !crate::method::is_safe(method)
}

/// Until when (unix seconds) the origin must remember a nonce of a signature that expires
/// at `expires`: the last second at which it would still accept that signature.
#[inline]
pub fn remember_until(expires: u64) -> u64 {
    expires.saturating_add(CLOCK_SKEW_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_vector::{GET, POST};

    #[test]
    fn nonces_are_16_bytes_of_base64url() {
        let n = encode_nonce(&[0xff; NONCE_BYTES]);
        assert_eq!(n.len(), NONCE_LEN);
        assert!(is_valid_nonce(&n));
        for v in [GET, POST] {
            assert!(is_valid_nonce(v.nonce), "{}", v.nonce);
        }
        let bytes: [u8; NONCE_BYTES] = std::array::from_fn(|i| i as u8);
        assert_eq!(encode_nonce(&bytes), GET.nonce);
        for bad in [
            "",
            "x",
            "AAECAwQFBgcICQoLDA0OD",    // 21 characters
            "AAECAwQFBgcICQoLDA0ODwA",  // 23 characters
            "AAECAwQFBgcICQoLDA0ODw==", // padded
            "AAECAwQFBgcICQoLDA0OD+",   // standard alphabet
            "AAECAwQFBgcICQoLDA0OD\"",
            "AAECAwQFBgcICQoLDA0ODx", // non-canonical: trailing bits set
            "AAECAwQFBgcICQoLDA0ODé",
        ] {
            assert!(!is_valid_nonce(bad), "{bad:?}");
        }
    }

    #[test]
    fn only_safe_methods_may_repeat() {
        for safe in ["GET", "HEAD", "OPTIONS", "TRACE"] {
            assert!(!replay_protected(safe), "{safe}");
        }
        for unsafe_ in [
            "POST", "PUT", "PATCH", "DELETE", "PURGE", "get", "CONNECT", "",
        ] {
            assert!(replay_protected(unsafe_), "{unsafe_}");
        }
        assert_eq!(remember_until(100), 100 + CLOCK_SKEW_SECS);
        assert_eq!(remember_until(u64::MAX), u64::MAX);
    }
}
