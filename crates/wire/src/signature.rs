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

/// Signs the covered components of `s` with `key` under `params`.
#[inline]
pub fn sign(s: &Signed<'_>, key: &[u8], params: &Params<'_>) -> SignatureHeaders {
    let params = params.serialize();
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
    use crate::test_vector;

    #[test]
    fn signs_the_pinned_vector() {
        let headers = sign(
            &test_vector::signed(),
            test_vector::KEY,
            &test_vector::params(),
        );
        assert_eq!(headers.input, test_vector::SIGNATURE_INPUT);
        assert_eq!(headers.signature, test_vector::SIGNATURE);
        assert_eq!(
            signature_value(test_vector::KEY, test_vector::BASE),
            test_vector::SIGNATURE
        );
    }

    #[test]
    fn verify_accepts_only_the_same_mac() {
        let mac = STANDARD.decode(test_vector::MAC_BASE64).unwrap();
        assert_eq!(verify(test_vector::KEY, test_vector::BASE, &mac), Ok(()));
        let other_base = test_vector::BASE.replace("req-1", "req-2");
        assert_eq!(
            verify(test_vector::KEY, &other_base, &mac),
            Err(MacMismatch)
        );
        assert_eq!(
            verify(b"another-secret", test_vector::BASE, &mac),
            Err(MacMismatch)
        );
        assert_eq!(
            verify(test_vector::KEY, test_vector::BASE, &mac[..31]),
            Err(MacMismatch)
        );
        assert_eq!(
            verify(test_vector::KEY, test_vector::BASE, &[]),
            Err(MacMismatch)
        );
    }
}
