//! Keys, tokens and a config for the auth tests: an issuer `iss-1` that signs with an
//! HS256 secret and with ES256 keys from a JWKS, and a key source whose JWKS can rotate.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header as JwtHeader};
use p256::pkcs8::EncodePrivateKey;
use serde_json::{json, Value};

use super::{
    parse_jwks, verify, AuthConfig, AuthFailure, Issuer, JwkKey, JwksError, KeySource, TokenError,
    Verified,
};

pub(super) const NOW: u64 = 1_800_000_000;
pub(super) const SECRET: &[u8] = b"hs256-test-secret";

pub(super) struct Keys {
    jwks: Vec<JwkKey>,
    pub(super) refreshed: Vec<JwkKey>,
    pub(super) fetches: u32,
    refresh_allowed: bool,
}

impl KeySource for Keys {
    fn hs256_secret(&mut self, name: &str) -> Option<Vec<u8>> {
        (name == "hs").then(|| SECRET.to_vec())
    }
    fn jwks(&mut self, _: &Issuer, refresh: bool) -> Result<Option<Vec<JwkKey>>, JwksError> {
        if refresh {
            if !self.refresh_allowed {
                return Ok(None);
            }
            self.refresh_allowed = false;
            self.fetches += 1;
            self.jwks = self.refreshed.clone();
        }
        Ok(Some(self.jwks.clone()))
    }
}

pub(super) struct EcKey {
    pub(super) pem: String,
    pub(super) jwk: Value,
}

pub(super) fn ec_key(kid: &str) -> EcKey {
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let pem = secret.to_pkcs8_pem(Default::default()).unwrap().to_string();
    let mut jwk: Value = serde_json::from_str(&secret.public_key().to_jwk_string()).unwrap();
    jwk["kid"] = kid.into();
    jwk["use"] = "sig".into();
    EcKey { pem, jwk }
}

pub(super) fn jwks_of(keys: &[&EcKey]) -> Vec<JwkKey> {
    let doc = json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
    parse_jwks(doc.to_string().as_bytes()).unwrap()
}

pub(super) fn config() -> AuthConfig {
    serde_json::from_value(json!({
        "issuers": [{"iss": "iss-1", "audience": "aud-1", "hs256_secret": "hs",
            "jwks": {"backends": ["b"], "path": "/jwks", "algorithms": ["ES256", "RS256"]}}]
    }))
    .unwrap()
}

pub(super) fn claims() -> Value {
    json!({"sub": "a@b.c", "uid": "u-1", "iss": "iss-1", "aud": "aud-1", "exp": NOW + 600,
           "iat": NOW, "scope": "read write", "roles": ["admin"]})
}

pub(super) fn hs(claims: &Value) -> String {
    jsonwebtoken::encode(
        &JwtHeader::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

pub(super) fn es(key: &EcKey, kid: &str, claims: &Value) -> String {
    let mut header = JwtHeader::new(Algorithm::ES256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_ec_pem(key.pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

pub(super) fn raw(header: &Value, claims: &Value, sig: &str) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        sig
    )
}

pub(super) fn keys(jwks: Vec<JwkKey>) -> Keys {
    Keys {
        refreshed: jwks.clone(),
        jwks,
        fetches: 0,
        refresh_allowed: true,
    }
}

pub(super) fn check(token: &str, keys: &mut Keys) -> Result<Verified, AuthFailure> {
    verify(token, &config(), keys, NOW)
}

pub(super) fn invalid(e: TokenError) -> Result<Verified, AuthFailure> {
    Err(AuthFailure::Invalid(e))
}
