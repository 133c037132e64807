//! Identity to the origin: what the edge verified, signed with an RFC 9421 HTTP
//! Message Signature (`hmac-sha256`) so the origin can refuse anything that bypassed us.
//!
//! The contract itself (header names, covered components, signature base, the identity
//! codec, the body digest and the nonce's form) lives in the `fastgate-wire` crate, which
//! the origin verifies with; this module only maps what the edge knows onto it. Headers
//! sent:
//! - `Fastgate-Identity`: base64url (no padding) of compact JSON of the verified claims that
//!   matter (`sub`, `uid`, `iss`, `exp`, `scopes`, `roles`); `e30` (`{}`) when anonymous.
//! - `Fastgate-Flags`: the feature flags evaluated at the edge.
//! - `Content-Digest` (RFC 9530, `sha-256`) of the body sent, when there is one.
//! - `Signature-Input` / `Signature` with label `fastgate`, covering
//!   `("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id")`, plus
//!   `"content-digest"` for a request with a body, and `created`, `expires` (60 s later), a
//!   fresh `nonce`, `keyid` and `alg="hmac-sha256"`.

use fastgate_wire::{Claims, Params, ANONYMOUS_IDENTITY, NONCE_BYTES};

use crate::auth::Verified;

pub use fastgate_wire::{
    content_digest, Signed, CONTENT_DIGEST_HEADER, FLAGS_HEADER, IDENTITY_HEADER,
    LIFETIME_SECS as LIFETIME_S, SIGNATURE_HEADER, SIGNATURE_INPUT_HEADER,
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

/// The nonces of one request: a random seed drawn once, and a distinct nonce for each
/// attempt. Every send needs its own nonce, because the origins share the nonces they have
/// seen: a failover retry of a PUT carrying the first attempt's nonce would be refused as a
/// replay by the next origin if the first one had recorded it before failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nonces([u8; NONCE_BYTES]);

impl Nonces {
    /// A random seed; `None` when the platform has no entropy, and then the edge must not
    /// sign (a guessable nonce could collide with another request's and be refused).
    pub fn random() -> Option<Self> {
        let mut seed = [0u8; NONCE_BYTES];
        getrandom::fill(&mut seed).ok()?;
        Some(Self(seed))
    }

    /// The nonces that follow from `seed` (tests pin them).
    pub const fn from_seed(seed: [u8; NONCE_BYTES]) -> Self {
        Self(seed)
    }

    /// The nonce of attempt `attempt` (0 for the first send): the seed with its last eight
    /// bytes XOR the attempt number, so no two attempts of a request share one.
    pub fn for_attempt(&self, attempt: usize) -> String {
        let mut bytes = self.0;
        let counter = (attempt as u64).to_le_bytes();
        for (b, c) in bytes[NONCE_BYTES - counter.len()..].iter_mut().zip(counter) {
            *b ^= c;
        }
        fastgate_wire::encode_nonce(&bytes)
    }
}

/// The `Signature-Input` parameters after the label (the `@signature-params` value) for a
/// signature over `s`.
pub fn signature_params(s: &Signed<'_>, created: u64, nonce: &str, key_id: &str) -> String {
    Params::new(created, nonce, key_id).serialize(s.covered())
}

/// The RFC 9421 §2.5 signature base for `s`, with the method upper-cased as the edge
/// always signs it.
pub fn signature_base(s: &Signed<'_>, params: &str) -> String {
    fastgate_wire::signature_base(&upper_method(s, &s.method.to_ascii_uppercase()), params)
}

/// Returns the `Signature-Input` and `Signature` header values for a signature made at
/// `now` with `nonce`, valid for [`LIFETIME_S`]. `s.content_digest` must be the
/// `Content-Digest` sent with the body (see [`content_digest`]), or `None` without a body.
pub fn sign(s: &Signed<'_>, key: &[u8], key_id: &str, nonce: &str, now: u64) -> (String, String) {
    sign_with(s, key, &Params::new(now, nonce, key_id))
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
    use fastgate_wire::test_vector::{self, GET, POST};
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    const NONCE: &str = "AAECAwQFBgcICQoLDA0ODw";

    fn signed() -> Signed<'static> {
        Signed {
            method: "get",
            path: "/api/user/profile",
            query: None,
            identity: "e30",
            flags: "new_schema=0",
            request_id: "req-1",
            content_digest: None,
        }
    }

    #[test]
    fn base_follows_rfc_9421() {
        let params = signature_params(&signed(), 1_700_000_000, NONCE, "k1");
        assert_eq!(
            params,
            r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000060;nonce="AAECAwQFBgcICQoLDA0ODw";keyid="k1";alg="hmac-sha256""#
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
        let (input, sig) = sign(&signed(), b"secret", "k1", NONCE, 1_700_000_000);
        assert!(input.starts_with("fastgate=(\"@method\""));
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        let params = signature_params(&signed(), 1_700_000_000, NONCE, "k1");
        mac.update(signature_base(&signed(), &params).as_bytes());
        let expected = STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(sig, format!("fastgate=:{expected}:"));
        // Any change to a covered component, or another nonce, changes the signature.
        let mut other = signed();
        other.path = "/api/user/other";
        assert_ne!(sign(&other, b"secret", "k1", NONCE, 1_700_000_000).1, sig);
        let nonce = "8PHy8_T19vf4-fr7_P3-_w";
        assert_ne!(
            sign(&signed(), b"secret", "k1", nonce, 1_700_000_000).1,
            sig
        );
    }

    #[test]
    fn signs_the_pinned_contract_vectors() {
        // The origin's tests verify these same vectors, so edge and origin agree to the byte.
        for v in [GET, POST] {
            let lower_method = v.method.to_ascii_lowercase();
            let lower = Signed {
                method: &lower_method,
                ..v.signed()
            };
            let (input, sig) = sign_with(&lower, test_vector::KEY, &v.params());
            assert_eq!(input, v.signature_input, "{}", v.method);
            assert_eq!(sig, v.signature, "{}", v.method);
            assert_eq!(signature_base(&lower, v.params), v.base);
            // `sign` opens the edge's own window at `now`; the rest is the same.
            let (input, _) = sign(
                &lower,
                test_vector::KEY,
                test_vector::KEY_ID,
                v.nonce,
                test_vector::CREATED,
            );
            assert_eq!(
                input,
                v.signature_input
                    .replace("expires=1700000030", "expires=1700000060")
            );
        }
        // The edge's digest of the vector's body is the vector's `Content-Digest`.
        assert_eq!(
            Some(content_digest(POST.body.unwrap()).as_str()),
            POST.content_digest
        );
    }

    #[test]
    fn every_attempt_gets_its_own_valid_nonce() {
        let nonces = Nonces::from_seed(std::array::from_fn(|i| i as u8));
        assert_eq!(nonces.for_attempt(0), GET.nonce);
        let all: Vec<String> = (0..300).map(|i| nonces.for_attempt(i)).collect();
        for n in &all {
            assert!(fastgate_wire::is_valid_nonce(n), "{n}");
        }
        let distinct: std::collections::HashSet<&String> = all.iter().collect();
        assert_eq!(distinct.len(), all.len());
        // Two requests draw different seeds.
        let (a, b) = (Nonces::random().unwrap(), Nonces::random().unwrap());
        assert_ne!(a.for_attempt(0), b.for_attempt(0));
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
