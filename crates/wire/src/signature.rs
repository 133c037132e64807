//! The HMAC-SHA256 over the signature base, as the `Signature-Input` and `Signature`
//! header values, and its constant-time check.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::base::{signature_base, Signed};
use crate::headers::LABEL;
use crate::params::Params;

type HmacSha256 = Hmac<Sha256>;

/// The two header values that carry one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// `Signature-Input`: `fastgate=` and the serialized parameters.
    pub input: String,
    /// `Signature`: `fastgate=:` standard base64 (padded) of the MAC `:`.
    pub signature: String,
}

/// Signs the covered components of `s` with `key` under `params`; the covered list follows
/// from `s` (with `content-digest` exactly when `s` carries one).
#[inline]
pub fn sign(s: &Signed<'_>, key: &[u8], params: &Params<'_>) -> SignatureHeaders {
    let params = params.serialize(s.covered());
    let signature = signature_value(key, &signature_base(s, &params));
    SignatureHeaders {
        input: format!("{LABEL}={params}"),
        signature,
    }
}

/// The `Signature` header value for an already built signature base.
#[inline]
pub fn signature_value(key: &[u8], base: &str) -> String {
    let mac = STANDARD.encode(hmac(key, base).finalize().into_bytes());
    format!("{LABEL}=:{mac}:")
}

/// Why [`verify`] refused a MAC. It says nothing more: which byte differed is no one's
/// business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signature does not match")]
pub struct MacMismatch;

/// Checks a received MAC (the decoded `Signature` bytes) against `base`, in constant time.
pub fn verify(key: &[u8], base: &str, mac: &[u8]) -> Result<(), MacMismatch> {
    hmac(key, base).verify_slice(mac).map_err(|_| MacMismatch)
}

#[inline]
fn hmac(key: &[u8], base: &str) -> HmacSha256 {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(base.as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_vector::{self, GET, POST};

    #[test]
    fn signs_the_pinned_vectors() {
        for v in [GET, POST] {
            let headers = sign(&v.signed(), test_vector::KEY, &v.params());
            assert_eq!(headers.input, v.signature_input, "{}", v.method);
            assert_eq!(headers.signature, v.signature, "{}", v.method);
            assert_eq!(signature_value(test_vector::KEY, v.base), v.signature);
        }
    }

    #[test]
    fn verify_accepts_only_the_same_mac() {
        let mac = STANDARD.decode(GET.mac_base64).unwrap();
        assert_eq!(verify(test_vector::KEY, GET.base, &mac), Ok(()));
        let other_base = GET.base.replace("req-1", "req-2");
        assert_eq!(
            verify(test_vector::KEY, &other_base, &mac),
            Err(MacMismatch)
        );
        assert_eq!(verify(b"another-secret", GET.base, &mac), Err(MacMismatch));
        assert_eq!(
            verify(test_vector::KEY, GET.base, &mac[..31]),
            Err(MacMismatch)
        );
        assert_eq!(verify(test_vector::KEY, GET.base, &[]), Err(MacMismatch));
    }

    #[test]
    fn the_body_and_the_nonce_are_bound() {
        let mac = STANDARD.decode(POST.mac_base64).unwrap();
        assert_eq!(verify(test_vector::KEY, POST.base, &mac), Ok(()));
        // Another body (so another digest), another nonce, or the digest line dropped:
        // each is a different base, and the MAC no longer matches.
        let digest = POST.content_digest.unwrap();
        let other_digest = crate::content_digest(b"{}");
        let dropped = format!("\"content-digest\": {digest}\n");
        for base in [
            POST.base.replace(digest, &other_digest),
            POST.base.replace(POST.nonce, GET.nonce),
            POST.base.replace(&dropped, ""),
        ] {
            assert_ne!(base, POST.base);
            assert_eq!(verify(test_vector::KEY, &base, &mac), Err(MacMismatch));
        }
    }
}
