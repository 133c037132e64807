//! Where the keys come from, and which one verifies a token. The platform supplies them
//! through [`KeySource`] (HS256 secrets, an issuer's JWKS); this file only decides when to
//! ask. Every key is pinned to one algorithm by its type (EC P-256 → ES256, RSA → RS256, a
//! secret → HS256), so the key decides the algorithm, never the token; and `jku`, `x5u` and
//! `jwk` headers are never read, so a token cannot point us at a key of its choosing.

use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::{AuthFailure, Issuer, TokenError};

/// A key from a JWKS, with the one algorithm it may verify.
#[derive(Clone)]
pub struct JwkKey {
    pub kid: Option<String>,
    pub alg: Algorithm,
    key: DecodingKey,
}

impl std::fmt::Debug for JwkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JwkKey({:?}, {:?})", self.kid, self.alg)
    }
}

/// The JWKS document could not be used at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("JWKS is not usable: {0}")]
pub struct JwksError(pub String);

/// The keys the platform can give us. Implemented by the adapter over the Secret Store and
/// the platform cache; the library only decides when to ask.
pub trait KeySource {
    /// The HS256 key stored under `secret_name`.
    fn hs256_secret(&mut self, secret_name: &str) -> Option<Vec<u8>>;
    /// The issuer's JWKS. With `refresh`, the caller met an unknown `kid`: the source
    /// should fetch again if its rate limit allows, and say `Ok(None)` when it does not.
    fn jwks(&mut self, issuer: &Issuer, refresh: bool) -> Result<Option<Vec<JwkKey>>, JwksError>;

    /// Whether the token with this digest ([`token_digest`](super::token_digest)) passed an
    /// ES256/RS256 signature check within its remembered lifetime, as Envoy's `jwt_authn`
    /// JWT cache does: a client sends the same token on every request, and the asymmetric
    /// check is by far the most expensive step of the auth phase. Only the signature is
    /// taken on trust; the header, algorithm, issuer and every claim are checked again. An
    /// entry lives no longer than the JWKS it was checked against stays fresh, so a removed
    /// key, or a JWKS that can no longer be fetched, is noticed on the same schedule as
    /// without this memory.
    fn signature_known_good(&mut self, _digest: &[u8; 32]) -> bool {
        false
    }

    /// Records that the token with this digest has a good signature, for `ttl_s` seconds.
    fn remember_good_signature(&mut self, _digest: &[u8; 32], _ttl_s: u64) {}

    /// How many more seconds the key set the last [`jwks`](KeySource::jwks) call returned
    /// for `issuer` stays fresh: a set just fetched, its whole `ttl_s`; a cached one, what
    /// is left of its TTL; a stale one standing in while it is refreshed, 0. A remembered
    /// signature never outlives it (see [`remembered_ttl_s`](super::remembered_ttl_s)), so
    /// a key removed from the JWKS stops counting when the set that listed it goes stale,
    /// not `ttl_s` after the token was last checked. A source without a cache of its own
    /// has no such limit.
    fn jwks_fresh_for_s(&mut self, _issuer: &Issuer) -> u64 {
        u64::MAX
    }
}

/// Parses a JWKS, keeping the signing keys we can pin to ES256 or RS256. Keys of other
/// types, for encryption, or declaring a different `alg` are skipped, not fatal.
pub fn parse_jwks(json: &[u8]) -> Result<Vec<JwkKey>, JwksError> {
    let doc: Value = serde_json::from_slice(json).map_err(|e| JwksError(e.to_string()))?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| JwksError("no `keys` array".into()))?;
    Ok(keys.iter().filter_map(pinned_key).collect())
}

/// One JWKS entry as a key pinned to its algorithm, or `None` when we may not use it.
fn pinned_key(raw: &Value) -> Option<JwkKey> {
    let text = |name: &str| raw.get(name).and_then(Value::as_str);
    let pinned = match (text("kty"), text("crv")) {
        (Some("EC"), Some("P-256")) => Algorithm::ES256,
        (Some("RSA"), _) => Algorithm::RS256,
        _ => return None,
    };
    if text("use").is_some_and(|u| u != "sig") {
        return None;
    }
    if text("alg").is_some_and(|declared| declared != alg_name(pinned)) {
        return None;
    }
    let jwk = serde_json::from_value::<jsonwebtoken::jwk::Jwk>(raw.clone()).ok()?;
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some(JwkKey {
        kid: text("kid").map(str::to_owned),
        alg: pinned,
        key,
    })
}

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::ES256 => "ES256",
        Algorithm::RS256 => "RS256",
        _ => "unsupported",
    }
}

/// The issuer must have declared this algorithm for its JWKS.
pub(super) fn jwks_allows(issuer: &Issuer, alg: Algorithm) -> Result<(), AuthFailure> {
    issuer
        .jwks
        .as_ref()
        .filter(|j| j.algorithms.iter().any(|a| a == alg_name(alg)))
        .map(|_| ())
        .ok_or(AuthFailure::Invalid(TokenError::UnsupportedAlgorithm))
}

/// The key that may verify a token of this issuer, algorithm and `kid`.
pub(super) fn select_key(
    issuer: &Issuer,
    alg: Algorithm,
    kid: Option<&str>,
    keys: &mut dyn KeySource,
) -> Result<DecodingKey, AuthFailure> {
    if alg == Algorithm::HS256 {
        return hs256_key(issuer, keys);
    }
    jwks_allows(issuer, alg)?;
    let unavailable = |e: JwksError| AuthFailure::KeysUnavailable(e.0);
    if let Some(set) = keys.jwks(issuer, false).map_err(unavailable)? {
        if let Some(key) = find_key(&set, alg, kid) {
            return Ok(key);
        }
    }
    // Unknown kid: the source refreshes at most once per interval; otherwise the negative
    // answer stands.
    match keys.jwks(issuer, true).map_err(unavailable)? {
        Some(set) => find_key(&set, alg, kid).ok_or(AuthFailure::Invalid(TokenError::UnknownKid)),
        None => Err(AuthFailure::Invalid(TokenError::UnknownKid)),
    }
}

/// The issuer's HS256 secret: only an issuer configured with one accepts HS256 at all.
fn hs256_key(issuer: &Issuer, keys: &mut dyn KeySource) -> Result<DecodingKey, AuthFailure> {
    let name = issuer
        .hs256_secret
        .as_deref()
        .ok_or(AuthFailure::Invalid(TokenError::UnsupportedAlgorithm))?;
    let secret = keys
        .hs256_secret(name)
        .ok_or_else(|| AuthFailure::KeysUnavailable("HS256 key missing".into()))?;
    Ok(DecodingKey::from_secret(&secret))
}

/// The key with this `kid`; without a `kid`, the set's only key for `alg` (never a guess
/// among several).
fn find_key(set: &[JwkKey], alg: Algorithm, kid: Option<&str>) -> Option<DecodingKey> {
    let mut candidates = set.iter().filter(|k| k.alg == alg);
    match kid {
        Some(kid) => candidates
            .find(|k| k.kid.as_deref() == Some(kid))
            .map(|k| k.key.clone()),
        None => {
            let first = candidates.next()?;
            candidates.next().is_none().then(|| first.key.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::auth::fixtures::*;
    use crate::auth::TokenError;

    #[test]
    fn unknown_kid_refreshes_once_then_stays_unknown() {
        let k1 = ec_key("k1");
        let k2 = ec_key("k2");
        let mut ks = keys(jwks_of(&[&k1]));
        ks.refreshed = jwks_of(&[&k1, &k2]);
        // Rotation: k2 appears after one refresh, k1 keeps passing while listed.
        assert!(check(&es(&k2, "k2", &claims()), &mut ks).is_ok());
        assert!(check(&es(&k1, "k1", &claims()), &mut ks).is_ok());
        assert_eq!(ks.fetches, 1);
        // A kid nobody lists: the refresh budget is spent, so no new fetch.
        let k3 = ec_key("k3");
        for _ in 0..100 {
            assert_eq!(
                check(&es(&k3, "k3", &claims()), &mut ks),
                invalid(TokenError::UnknownKid)
            );
        }
        assert_eq!(ks.fetches, 1);
    }
}
