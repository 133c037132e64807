//! Identity to the origin (DESIGN §4): what the edge verified, signed with an RFC 9421 HTTP
//! Message Signature (`hmac-sha256`) so the origin can refuse anything that bypassed us.
//!
//! Headers sent:
//! - `Fastgate-Identity`: base64url (no padding) of compact JSON of the verified claims that
//!   matter (`sub`, `uid`, `iss`, `exp`, `scopes`, `roles`); `e30` (`{}`) when anonymous.
//! - `Fastgate-Flags`: the feature flags evaluated at the edge.
//! - `Signature-Input` / `Signature` with label `fastgate`, covering
//!   `("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id")`,
//!   `created`, `expires` (≤ 60 s later), `keyid` and `alg="hmac-sha256"`.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::auth::Verified;

pub const IDENTITY_HEADER: &str = "fastgate-identity";
pub const FLAGS_HEADER: &str = "fastgate-flags";
pub const SIGNATURE_INPUT_HEADER: &str = "signature-input";
pub const SIGNATURE_HEADER: &str = "signature";
/// How long a signature stays valid; short, because it only has to survive one hop.
pub const LIFETIME_S: u64 = 60;
const COMPONENTS: &str =
    r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id")"#;

#[derive(Serialize)]
struct IdentityClaims<'a> {
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
    iss: &'a str,
    exp: u64,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    scopes: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    roles: &'a [String],
}

/// The `Fastgate-Identity` value for a verified caller, or the anonymous `e30`.
pub fn identity_header(verified: Option<&Verified>) -> String {
    let json = match verified {
        Some(v) => serde_json::to_vec(&IdentityClaims {
            sub: &v.sub,
            uid: v.uid.as_deref(),
            iss: &v.iss,
            exp: v.exp,
            scopes: &v.scopes,
            roles: &v.roles,
        })
        .unwrap_or_else(|_| b"{}".to_vec()),
        None => b"{}".to_vec(),
    };
    URL_SAFE_NO_PAD.encode(json)
}

/// What is signed, for one forwarded request.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub method: &'a str,
    /// The path exactly as sent upstream (no query).
    pub path: &'a str,
    /// The raw query as sent upstream, without `?`.
    pub query: Option<&'a str>,
    pub identity: &'a str,
    pub flags: &'a str,
    pub request_id: &'a str,
}

/// The `Signature-Input` parameters after the label (the `@signature-params` value).
pub fn signature_params(created: u64, key_id: &str) -> String {
    format!(
        "{COMPONENTS};created={created};expires={};keyid=\"{key_id}\";alg=\"hmac-sha256\"",
        created + LIFETIME_S
    )
}

/// The RFC 9421 §2.5 signature base: one `"name": value` line per covered component, then
/// `"@signature-params"`, joined by `\n` with no trailing newline.
pub fn signature_base(s: &Signed<'_>, params: &str) -> String {
    format!(
        "\"@method\": {}\n\"@path\": {}\n\"@query\": ?{}\n\"fastgate-identity\": {}\n\"fastgate-flags\": {}\n\"x-request-id\": {}\n\"@signature-params\": {params}",
        s.method.to_ascii_uppercase(),
        s.path,
        s.query.unwrap_or(""),
        s.identity,
        s.flags,
        s.request_id,
    )
}

/// Returns the `Signature-Input` and `Signature` header values.
pub fn sign(s: &Signed<'_>, key: &[u8], key_id: &str, now: u64) -> (String, String) {
    let params = signature_params(now, key_id);
    let base = signature_base(s, &params);
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(base.as_bytes());
    let sig = STANDARD.encode(mac.finalize().into_bytes());
    (format!("fastgate={params}"), format!("fastgate=:{sig}:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed() -> Signed<'static> {
        Signed {
            method: "get",
            path: "/api/user/profile",
            query: None,
            identity: "e30",
            flags: "new_schema=0",
            request_id: "req-1",
        }
    }

    #[test]
    fn base_follows_rfc_9421() {
        let params = signature_params(1_700_000_000, "k1");
        assert_eq!(
            params,
            r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000060;keyid="k1";alg="hmac-sha256""#
        );
        let base = signature_base(&signed(), &params);
        assert_eq!(
            base,
            format!(
                "\"@method\": GET\n\"@path\": /api/user/profile\n\"@query\": ?\n\"fastgate-identity\": e30\n\"fastgate-flags\": new_schema=0\n\"x-request-id\": req-1\n\"@signature-params\": {params}"
            )
        );
    }

    #[test]
    fn signature_is_hmac_sha256_over_the_base() {
        let (input, sig) = sign(&signed(), b"secret", "k1", 1_700_000_000);
        assert!(input.starts_with("fastgate=(\"@method\""));
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(signature_base(&signed(), &signature_params(1_700_000_000, "k1")).as_bytes());
        let expected = STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(sig, format!("fastgate=:{expected}:"));
        // Any change to a covered component changes the signature.
        let mut other = signed();
        other.path = "/api/user/other";
        assert_ne!(sign(&other, b"secret", "k1", 1_700_000_000).1, sig);
    }

    #[test]
    fn identity_is_compact_base64url_json() {
        assert_eq!(identity_header(None), "e30");
        let v = Verified {
            sub: "a@b.c".into(),
            iss: "i".into(),
            exp: 5,
            uid: Some("u".into()),
            scopes: vec![],
            roles: vec!["admin".into()],
            claims: Default::default(),
        };
        let decoded = URL_SAFE_NO_PAD.decode(identity_header(Some(&v))).unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            r#"{"sub":"a@b.c","uid":"u","iss":"i","exp":5,"roles":["admin"]}"#
        );
    }
}
