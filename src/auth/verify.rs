//! Checking a token, and the phase as a whole ([`authenticate`]).
//!
//! What is checked, in order, before any key is touched (RFC 7515 / RFC 8725):
//! - size (≤ `max_token_bytes`), three base64url segments, a JSON-object header;
//! - `alg` is one we verify (`HS256`, `ES256`, `RS256`; `none` and the rest are refused);
//! - `crit` is absent (we understand no extensions, so any entry is unknown: RFC 7515 §4.1.11);
//! - `kid`, when present, is a short opaque id of safe characters.
//!
//! Then the signature, with the key the issuer's config pins (see `jwks.rs`); then the
//! claims (see `claims.rs`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::Value;

use super::claims::{check_claims, check_route};
use super::jwks::{jwks_allows, select_key};
use super::{
    AuthConfig, AuthFailure, JwksCache, KeySource, Policy, RouteAuth, TokenError, Verified,
};

/// Applies a route's policy: returns the verified identity (or `None` for an anonymous
/// caller where that is allowed).
pub fn authenticate(
    route: &RouteAuth,
    config: &AuthConfig,
    token: Result<Option<&str>, TokenError>,
    keys: &mut dyn KeySource,
    now: u64,
) -> Result<Option<Verified>, AuthFailure> {
    if route.policy == Policy::Public {
        return Ok(None);
    }
    let token = match token.map_err(AuthFailure::Invalid)? {
        Some(t) => t,
        None if route.policy == Policy::Optional => return Ok(None),
        None => return Err(AuthFailure::Missing),
    };
    let verified = verify(token, config, keys, now)?;
    check_route(route, &verified)?;
    Ok(Some(verified))
}

/// Verifies a token against the configured issuers.
pub fn verify(
    token: &str,
    config: &AuthConfig,
    keys: &mut dyn KeySource,
    now: u64,
) -> Result<Verified, AuthFailure> {
    let invalid = AuthFailure::Invalid;
    let parsed = parse(token, config.max_token_bytes).map_err(invalid)?;
    // The issuer is chosen by the (unverified) `iss`, only to know which keys to try.
    let issuer = parsed
        .payload
        .get("iss")
        .and_then(Value::as_str)
        .and_then(|iss| config.issuers.iter().find(|i| i.iss == iss))
        .ok_or(invalid(TokenError::WrongIssuer))?;
    // HS256 costs microseconds: only the asymmetric checks are worth remembering.
    let remembered = (parsed.alg != Algorithm::HS256 && config.jwks.verified_ttl_s > 0)
        .then(|| token_digest(token));
    let known_good = match &remembered {
        Some(digest) => {
            jwks_allows(issuer, parsed.alg)?;
            keys.signature_known_good(digest)
        }
        None => false,
    };
    if !known_good {
        let key = select_key(issuer, parsed.alg, parsed.kid.as_deref(), keys)?;
        check_signature(token, &key, parsed.alg).map_err(invalid)?;
    }
    let verified = check_claims(parsed.payload, issuer, config.leeway_s, now).map_err(invalid)?;
    if let (Some(digest), false) = (&remembered, known_good) {
        let set_fresh_for_s = keys.jwks_fresh_for_s(issuer);
        let ttl = remembered_ttl_s(verified.exp, now, &config.jwks, set_fresh_for_s);
        if ttl > 0 {
            keys.remember_good_signature(digest, ttl);
        }
    }
    Ok(verified)
}

/// SHA-256 of a domain tag and the whole token: the key of [`KeySource::signature_known_good`].
/// Any change to the token (header, claims or signature) changes it.
pub fn token_digest(token: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"fastgate-jwt-signature-v1\0");
    h.update(token.as_bytes());
    h.finalize().into()
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Vec<String>>,
}

/// A token whose shape and header passed, and whose signature is not checked yet.
struct Parsed {
    alg: Algorithm,
    kid: Option<String>,
    payload: Value,
}

/// Every check that needs no key, in the order the module doc lists them.
fn parse(token: &str, max_token_bytes: usize) -> Result<Parsed, TokenError> {
    if token.len() > max_token_bytes {
        return Err(TokenError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("not three segments"));
    };
    if s.is_empty() || URL_SAFE_NO_PAD.decode(s).is_err() {
        return Err(TokenError::Malformed("signature"));
    }
    let header: Header = serde_json::from_value(b64_json(h, "header")?)
        .map_err(|_| TokenError::Malformed("header"))?;
    let payload = b64_json(p, "payload")?;
    let alg = match header.alg.as_str() {
        "HS256" => Algorithm::HS256,
        "ES256" => Algorithm::ES256,
        "RS256" => Algorithm::RS256,
        _ => return Err(TokenError::UnsupportedAlgorithm),
    };
    match &header.crit {
        Some(list) if list.is_empty() => return Err(TokenError::Malformed("empty crit")),
        Some(_) => return Err(TokenError::UnknownCrit),
        None => {}
    }
    if header.kid.as_deref().is_some_and(|k| !is_safe_kid(k)) {
        return Err(TokenError::Malformed("kid"));
    }
    Ok(Parsed {
        alg,
        kid: header.kid,
        payload,
    })
}

fn b64_json(segment: &str, what: &'static str) -> Result<Value, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| TokenError::Malformed(what))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed(what))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(TokenError::Malformed(what))
    }
}

fn is_safe_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= 128
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The signature alone, over the token's first two segments as sent: the header and the
/// claims were already parsed and checked by [`parse`] (and are checked again by us, with
/// our leeway), so the library is asked only for the cryptography, not to decode the token
/// a second time.
fn check_signature(token: &str, key: &DecodingKey, alg: Algorithm) -> Result<(), TokenError> {
    use jsonwebtoken::errors::ErrorKind;
    let (message, signature) = token
        .rsplit_once('.')
        .ok_or(TokenError::Malformed("token"))?;
    super::crypto::install();
    match jsonwebtoken::crypto::verify(signature, message.as_bytes(), key, alg) {
        Ok(true) => Ok(()),
        Ok(false) => Err(TokenError::BadSignature),
        Err(e) => Err(match e.kind() {
            ErrorKind::InvalidSignature
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidRsaKey(_) => TokenError::BadSignature,
            ErrorKind::InvalidAlgorithm => TokenError::UnsupportedAlgorithm,
            _ => TokenError::Malformed("token"),
        }),
    }
}

/// How long a freshly checked ES256/RS256 signature may be remembered: never longer than
/// `verified_ttl_s`, the token's own `exp`, `jwks.ttl_s`, or what is left of the freshness
/// of the key set that vouched for it (`set_fresh_for_s`, from
/// [`KeySource::jwks_fresh_for_s`]). The last one is what makes a key removed from the JWKS
/// stop counting once the set that listed it goes stale: counting `ttl_s` from the check
/// instead would honour it for up to twice `ttl_s`. A stale set (0 left) vouches for the
/// request at hand only, and 0 means "do not remember".
pub fn remembered_ttl_s(exp: u64, now: u64, jwks: &JwksCache, set_fresh_for_s: u64) -> u64 {
    exp.saturating_sub(now)
        .min(u64::from(jwks.verified_ttl_s))
        .min(u64::from(jwks.ttl_s))
        .min(set_fresh_for_s)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use jsonwebtoken::{Algorithm, EncodingKey, Header as JwtHeader};
    use serde_json::json;

    use super::*;
    use crate::auth::fixtures::*;
    use crate::auth::{extract_token, Issuer, JwkKey, JwksError};

    #[test]
    fn valid_hs256_and_es256_tokens_pass() {
        let k1 = ec_key("k1");
        let mut ks = keys(jwks_of(&[&k1]));
        let v = check(&hs(&claims()), &mut ks).unwrap();
        assert_eq!((v.sub.as_str(), v.uid.as_deref()), ("a@b.c", Some("u-1")));
        assert_eq!(v.scopes, ["read", "write"]);
        assert_eq!(v.roles, ["admin"]);
        assert_eq!(
            check(&es(&k1, "k1", &claims()), &mut ks).unwrap().sub,
            "a@b.c"
        );
    }

    #[test]
    fn algorithm_none_and_confusion_are_refused() {
        let k1 = ec_key("k1");
        let mut ks = keys(jwks_of(&[&k1]));
        let none = raw(&json!({"alg": "none"}), &claims(), "");
        assert!(matches!(
            check(&none, &mut ks),
            Err(AuthFailure::Invalid(_))
        ));
        let none = raw(&json!({"alg": "none"}), &claims(), "c2ln");
        assert_eq!(
            check(&none, &mut ks),
            invalid(TokenError::UnsupportedAlgorithm)
        );
        // HS256 "signed" with the public key as the HMAC secret: the HS256 key is ours.
        let public = k1.jwk.to_string();
        let mut header = JwtHeader::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let forged = jsonwebtoken::encode(
            &header,
            &claims(),
            &EncodingKey::from_secret(public.as_bytes()),
        )
        .unwrap();
        assert_eq!(check(&forged, &mut ks), invalid(TokenError::BadSignature));
        for alg in ["HS512", "PS256", "EdDSA", "ES384"] {
            let t = raw(&json!({"alg": alg}), &claims(), "c2ln");
            assert_eq!(
                check(&t, &mut ks),
                invalid(TokenError::UnsupportedAlgorithm),
                "{alg}"
            );
        }
    }

    #[test]
    fn tampering_and_malformed_tokens_are_refused() {
        let mut ks = keys(vec![]);
        let token = hs(&claims());
        let parts: Vec<&str> = token.split('.').collect();
        let mut c = claims();
        c["sub"] = "admin@b.c".into();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(c.to_string()),
            parts[2]
        );
        assert_eq!(check(&tampered, &mut ks), invalid(TokenError::BadSignature));
        let mut sig = parts[2].to_owned();
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        sig.replace_range(0..1, flipped);
        let bad_sig = format!("{}.{}.{sig}", parts[0], parts[1]);
        assert_eq!(check(&bad_sig, &mut ks), invalid(TokenError::BadSignature));
        assert_eq!(
            check(&"a".repeat(9 * 1024), &mut ks),
            invalid(TokenError::TooLarge)
        );
        assert!(matches!(
            check("a$b.c.d", &mut ks),
            Err(AuthFailure::Invalid(TokenError::Malformed(_)))
        ));
        assert!(matches!(
            check("abc.def", &mut ks),
            Err(AuthFailure::Invalid(TokenError::Malformed(_)))
        ));
        let not_json = format!("{}.{}.c2ln", URL_SAFE_NO_PAD.encode("hello"), parts[1]);
        assert_eq!(
            check(&not_json, &mut ks),
            invalid(TokenError::Malformed("header"))
        );
        let array = format!("{}.{}.c2ln", URL_SAFE_NO_PAD.encode("[1]"), parts[1]);
        assert_eq!(
            check(&array, &mut ks),
            invalid(TokenError::Malformed("header"))
        );
    }

    #[test]
    fn kid_is_opaque_and_crit_jku_x5u_jwk_are_handled() {
        let k1 = ec_key("k1");
        let mut ks = keys(jwks_of(&[&k1]));
        let t = es(&k1, "../../etc/passwd", &claims());
        assert_eq!(check(&t, &mut ks), invalid(TokenError::Malformed("kid")));
        // crit: RFC 7515 says an unknown extension must be rejected.
        let mut header = JwtHeader::new(Algorithm::HS256);
        header.crit = Some(vec!["exp".into()]);
        let t =
            jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(SECRET)).unwrap();
        assert_eq!(check(&t, &mut ks), invalid(TokenError::UnknownCrit));
        // jku / x5u / jwk in the header are ignored: a token cannot bring its own key.
        let attacker = ec_key("k1");
        let mut header = JwtHeader::new(Algorithm::ES256);
        header.kid = Some("k1".into());
        header.jku = Some("https://evil.example/jwks".into());
        header.x5u = Some("https://evil.example/cert".into());
        header.jwk = serde_json::from_value(attacker.jwk.clone()).ok();
        let t = jsonwebtoken::encode(
            &header,
            &claims(),
            &EncodingKey::from_ec_pem(attacker.pem.as_bytes()).unwrap(),
        )
        .unwrap();
        assert_eq!(check(&t, &mut ks), invalid(TokenError::BadSignature));
    }

    #[test]
    fn policies_and_scopes() {
        let mut ks = keys(vec![]);
        let cfg = config();
        let route = |policy: Policy, scopes: &[&str]| RouteAuth {
            policy,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let token = hs(&claims());
        let ok = Ok(Some(token.as_str()));
        assert_eq!(
            authenticate(
                &route(Policy::Public, &[]),
                &cfg,
                Ok(Some("junk")),
                &mut ks,
                NOW
            ),
            Ok(None)
        );
        assert_eq!(
            authenticate(&route(Policy::Optional, &[]), &cfg, Ok(None), &mut ks, NOW),
            Ok(None)
        );
        assert!(matches!(
            authenticate(
                &route(Policy::Optional, &[]),
                &cfg,
                Ok(Some("junk")),
                &mut ks,
                NOW
            ),
            Err(AuthFailure::Invalid(_))
        ));
        assert_eq!(
            authenticate(&route(Policy::Required, &[]), &cfg, Ok(None), &mut ks, NOW),
            Err(AuthFailure::Missing)
        );
        assert!(authenticate(
            &route(Policy::Required, &["read"]),
            &cfg,
            ok.clone(),
            &mut ks,
            NOW
        )
        .is_ok());
        let denied = authenticate(
            &route(Policy::Required, &["delete"]),
            &cfg,
            ok,
            &mut ks,
            NOW,
        )
        .unwrap_err();
        assert_eq!(denied.status(), 403);
        assert!(denied
            .www_authenticate()
            .unwrap()
            .contains(r#"error="insufficient_scope", scope="delete""#));
    }

    /// Random and mutated tokens never panic the checker (a property test with a fixed
    /// seed, so a failure is reproducible).
    #[test]
    fn random_and_mutated_tokens_never_panic() {
        let k1 = ec_key("k1");
        let mut ks = keys(jwks_of(&[&k1]));
        let seeds = [
            hs(&claims()),
            es(&k1, "k1", &claims()),
            raw(&json!({"alg":"none"}), &claims(), ""),
        ];
        let alphabet = b"ABCxyz019-_.=+/ {}\"\\:,\x00\xff";
        let mut rng = crate::test_rng::Rng(0x9E37_79B9_7F4A_7C15);
        let mut next = || rng.next();
        for i in 0..20_000 {
            let mut bytes = seeds[i % seeds.len()].clone().into_bytes();
            for _ in 0..=(next() % 6) {
                let pos = (next() as usize) % (bytes.len() + 1);
                let byte = alphabet[(next() as usize) % alphabet.len()];
                match next() % 3 {
                    0 if pos < bytes.len() => bytes[pos] = byte,
                    1 => bytes.insert(pos, byte),
                    _ if pos < bytes.len() => {
                        bytes.remove(pos);
                    }
                    _ => {}
                }
            }
            let token = String::from_utf8_lossy(&bytes);
            let _ = check(&token, &mut ks);
            let _ = extract_token(Some(&format!("Bearer {token}")), Some(&token), Some("s"));
        }
    }

    /// `Keys` plus a signature memory, counting what reaches the JWKS; its key set has
    /// `fresh_for_s` seconds of freshness left.
    struct Remembering {
        inner: Keys,
        good: BTreeMap<[u8; 32], u64>,
        jwks_calls: u32,
        fresh_for_s: u64,
    }

    impl KeySource for Remembering {
        fn hs256_secret(&mut self, name: &str) -> Option<Vec<u8>> {
            self.inner.hs256_secret(name)
        }
        fn jwks(&mut self, i: &Issuer, refresh: bool) -> Result<Option<Vec<JwkKey>>, JwksError> {
            self.jwks_calls += 1;
            self.inner.jwks(i, refresh)
        }
        fn signature_known_good(&mut self, digest: &[u8; 32]) -> bool {
            self.good.contains_key(digest)
        }
        fn remember_good_signature(&mut self, digest: &[u8; 32], ttl_s: u64) {
            self.good.insert(*digest, ttl_s);
        }
        fn jwks_fresh_for_s(&mut self, _: &Issuer) -> u64 {
            self.fresh_for_s
        }
    }

    fn remembering(set: Vec<JwkKey>, fresh_for_s: u64) -> Remembering {
        Remembering {
            inner: keys(set),
            good: BTreeMap::new(),
            jwks_calls: 0,
            fresh_for_s,
        }
    }

    #[test]
    fn a_verified_asymmetric_signature_is_remembered_but_every_claim_is_checked_again() {
        let key = ec_key("k1");
        let mut keys = remembering(jwks_of(&[&key]), u64::MAX);
        let token = es(&key, "k1", &claims());
        let first = verify(&token, &config(), &mut keys, NOW).unwrap();
        assert_eq!(keys.jwks_calls, 1);
        assert_eq!(keys.good.get(&token_digest(&token)), Some(&300));
        let again = verify(&token, &config(), &mut keys, NOW).unwrap();
        assert_eq!(again, first);
        assert_eq!(keys.jwks_calls, 1, "the second check skipped the signature");
        // The remembered signature does not outlive the token's claims.
        assert_eq!(
            verify(&token, &config(), &mut keys, NOW + 700),
            invalid(TokenError::Expired)
        );
        // Any change to the token is a different digest: a full check, which fails.
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(verify(&tampered, &config(), &mut keys, NOW).is_err());
        // An algorithm the issuer no longer allows is refused even when remembered.
        let mut strict = config();
        strict.issuers[0].jwks.as_mut().unwrap().algorithms = vec!["RS256".into()];
        assert_eq!(
            verify(&token, &strict, &mut keys, NOW),
            invalid(TokenError::UnsupportedAlgorithm)
        );
        // Never longer than the key set stays fresh.
        let mut brief = config();
        brief.jwks.ttl_s = 5;
        let other = es(
            &key,
            "k1",
            &json!({"sub": "x", "iss": "iss-1", "aud": "aud-1", "exp": NOW + 600}),
        );
        verify(&other, &brief, &mut keys, NOW).unwrap();
        assert_eq!(keys.good.get(&token_digest(&other)), Some(&5));
        // A short-lived token is remembered only as long as it lives.
        let mut short = claims();
        short["exp"] = json!(NOW + 20);
        let short = es(&key, "k1", &short);
        verify(&short, &config(), &mut keys, NOW).unwrap();
        assert_eq!(keys.good.get(&token_digest(&short)), Some(&20));
        // HS256 is cheap: never remembered.
        let hs_token = hs(&claims());
        verify(&hs_token, &config(), &mut keys, NOW).unwrap();
        assert!(!keys.good.contains_key(&token_digest(&hs_token)));
    }

    /// Defect 10: the memory of a signature is capped by what is left of the freshness of
    /// the key set that vouched for it, so a key removed from the JWKS stops counting when
    /// that set goes stale, not `ttl_s` after the last check (up to twice `ttl_s` before).
    #[test]
    fn a_remembered_signature_never_outlives_the_key_set_that_vouched_for_it() {
        let jwks = crate::auth::JwksCache::default(); // ttl_s 300, verified_ttl_s 300
        let exp = NOW + 600;
        // A set fetched just now vouches for its whole TTL ...
        assert_eq!(remembered_ttl_s(exp, NOW, &jwks, 300), 300);
        // ... one cached 250 s ago for the 50 s it has left ...
        assert_eq!(remembered_ttl_s(exp, NOW, &jwks, 50), 50);
        // ... and a stale one, standing in while it is refreshed, for this request only.
        assert_eq!(remembered_ttl_s(exp, NOW, &jwks, 0), 0);
        // Never past the token's `exp`, `verified_ttl_s` or `ttl_s` either.
        assert_eq!(remembered_ttl_s(NOW + 20, NOW, &jwks, 50), 20);
        assert_eq!(remembered_ttl_s(NOW - 1, NOW, &jwks, 50), 0);
        let short = crate::auth::JwksCache {
            verified_ttl_s: 10,
            ..Default::default()
        };
        assert_eq!(remembered_ttl_s(exp, NOW, &short, 50), 10);
        let brief = crate::auth::JwksCache {
            ttl_s: 5,
            ..Default::default()
        };
        assert_eq!(remembered_ttl_s(exp, NOW, &brief, u64::MAX), 5);

        // Through `verify`: what the key source says is left of its set is what is kept.
        let key = ec_key("k1");
        let mut cached = remembering(jwks_of(&[&key]), 50);
        let token = es(&key, "k1", &claims());
        verify(&token, &config(), &mut cached, NOW).unwrap();
        assert_eq!(cached.good.get(&token_digest(&token)), Some(&50));
        let mut stale = remembering(jwks_of(&[&key]), 0);
        verify(&token, &config(), &mut stale, NOW).unwrap();
        assert!(
            stale.good.is_empty(),
            "a stale set vouches for nothing later"
        );
        // Without a memory of the signature, the next request checks the key set again.
        verify(&token, &config(), &mut stale, NOW).unwrap();
        assert_eq!(stale.jwks_calls, 2);
    }
}
