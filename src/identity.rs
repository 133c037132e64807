//! Identity to the origin: what the edge verified, signed with an RFC 9421 HTTP
//! Message Signature (`hmac-sha256`) so the origin can refuse anything that bypassed us.
//!
//! The contract itself (header names, covered components, signature base, the identity
//! codec) lives in the `fastgate-wire` crate, which the origin verifies with; this module
//! only maps what the edge knows onto it. Headers sent:
//! - `Fastgate-Identity`: base64url (no padding) of compact JSON of the verified claims that
//!   matter (`sub`, `uid`, `iss`, `exp`, `scopes`, `roles`); `e30` (`{}`) when anonymous.
//! - `Fastgate-Flags`: the feature flags evaluated at the edge.
//! - `Signature-Input` / `Signature` with label `fastgate`, covering
//!   `("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id")`,
//!   `created`, `expires` (60 s later), `keyid` and `alg="hmac-sha256"`.

use fastgate_wire::{Claims, Params, ANONYMOUS_IDENTITY};

use crate::auth::Verified;

pub use fastgate_wire::{
    Signed, FLAGS_HEADER, IDENTITY_HEADER, LIFETIME_SECS as LIFETIME_S, SIGNATURE_HEADER,
    SIGNATURE_INPUT_HEADER,
};

/// The `Fastgate-Identity` value for a verified caller, or the anonymous `e30`.
pub fn identity_header(verified: Option<&Verified>) -> String {
    let Some(v) = verified else {
        return ANONYMOUS_IDENTITY.to_owned();
    };
    Claims {
        sub: &v.sub,
        uid: v.uid.as_deref(),
        iss: &v.iss,
        exp: v.exp,
        scopes: &v.scopes,
        roles: &v.roles,
    }
    .encode()
}

/// The `Signature-Input` parameters after the label (the `@signature-params` value).
pub fn signature_params(created: u64, key_id: &str) -> String {
    Params::new(created, key_id).serialize()
}

/// The RFC 9421 §2.5 signature base for `s`, with the method upper-cased as the edge
/// always signs it.
pub fn signature_base(s: &Signed<'_>, params: &str) -> String {
    fastgate_wire::signature_base(&upper_method(s, &s.method.to_ascii_uppercase()), params)
}

/// Returns the `Signature-Input` and `Signature` header values for a signature made at
/// `now`, valid for [`LIFETIME_S`].
pub fn sign(s: &Signed<'_>, key: &[u8], key_id: &str, now: u64) -> (String, String) {
    sign_with(s, key, &Params::new(now, key_id))
}

fn sign_with(s: &Signed<'_>, key: &[u8], params: &Params<'_>) -> (String, String) {
    let method = s.method.to_ascii_uppercase();
    let headers = fastgate_wire::sign(&upper_method(s, &method), key, params);
    (headers.input, headers.signature)
}

/// `s` with its method replaced by the upper-cased `method`.
fn upper_method<'a>(s: &Signed<'a>, method: &'a str) -> Signed<'a> {
    Signed { method, ..*s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    use fastgate_wire::test_vector;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

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
    fn signs_the_pinned_contract_vector() {
        // The origin's tests verify this same vector, so edge and origin agree to the byte.
        let lower = Signed {
            method: "get",
            ..test_vector::signed()
        };
        let (input, sig) = sign_with(&lower, test_vector::KEY, &test_vector::params());
        assert_eq!(input, test_vector::SIGNATURE_INPUT);
        assert_eq!(sig, test_vector::SIGNATURE);
        assert_eq!(
            signature_base(&lower, test_vector::PARAMS),
            test_vector::BASE
        );
        // `sign` opens the edge's own window at `now`; the rest is the same.
        let (input, _) = sign(
            &lower,
            test_vector::KEY,
            test_vector::KEY_ID,
            test_vector::CREATED,
        );
        assert_eq!(
            input,
            test_vector::SIGNATURE_INPUT.replace("expires=1700000030", "expires=1700000060")
        );
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
