//! The authenticate phase: a declarative policy per route, and JWT checks to the letter of
//! RFC 7519 / RFC 8725 / RFC 6750, in the manner of Envoy's `jwt_authn`.
//!
//! What is checked, in order, before any key is touched:
//! - size (≤ `max_token_bytes`), three base64url segments, a JSON-object header;
//! - `alg` is one we verify (`HS256`, `ES256`, `RS256`; `none` and the rest are refused);
//! - `crit` is absent (we understand no extensions, so any entry is unknown: RFC 7515 §4.1.11);
//! - `kid`, when present, is a short opaque id of safe characters; `jku`, `x5u` and `jwk` are
//!   ignored, so a token can never point us at a key of its choosing.
//!
//! The key decides the algorithm, never the token: an HS256 secret verifies only HS256, and
//! a JWKS key only the algorithm its type implies (EC P-256 → ES256, RSA → RS256). Then the
//! signature, then the claims with a leeway: `exp` (required), `nbf`, `iss` (exact), `aud`
//! (must contain ours), `sub` (required: it is the identity we forward).

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

/// Who may call a route.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// No token is looked at.
    Public,
    /// A token is not needed, but one that is sent must be valid.
    Optional,
    /// A valid token is needed. The default: a route is closed unless it says otherwise.
    #[default]
    Required,
}

/// A route's auth requirements.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct RouteAuth {
    #[serde(default)]
    pub policy: Policy,
    /// Every one of these must be in the token's `scope` (space-separated) or `scp`/`scopes`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Every one of these must be in the token's `roles`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Claims that must have exactly these values.
    #[serde(default)]
    pub claims: BTreeMap<String, Value>,
}

/// Where an issuer's asymmetric keys come from.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JwksSource {
    /// Backends to fetch the JWKS from, tried in order.
    pub backends: Vec<String>,
    pub path: String,
    /// Which of `ES256`, `RS256` this issuer may use.
    pub algorithms: Vec<String>,
}

/// A trusted token issuer.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Issuer {
    /// The exact `iss` value.
    pub iss: String,
    /// The audience our tokens must name in `aud`.
    pub audience: String,
    /// Secret Store entry holding this issuer's HS256 key, if it signs with HS256.
    #[serde(default)]
    pub hs256_secret: Option<String>,
    #[serde(default)]
    pub jwks: Option<JwksSource>,
}

fn default_leeway() -> u64 {
    30
}
fn default_max_token() -> usize {
    8192
}

/// JWKS caching: how long a fetched set is fresh, how often an unknown `kid` may force a
/// refresh, and how long a stale set may stand in while the source is unreachable.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct JwksCache {
    pub ttl_s: u32,
    pub refresh_interval_s: u32,
    pub max_stale_s: u32,
    /// How long a token whose ES256/RS256 signature verified is remembered as such (by
    /// SHA-256 of the whole token), so its next requests skip the signature check; every
    /// other check still runs each time. Never longer than `ttl_s` (the JWKS's own freshness)
    /// or the token's `exp`. 0 turns it off. See [`KeySource::signature_known_good`].
    pub verified_ttl_s: u32,
}

impl Default for JwksCache {
    fn default() -> Self {
        JwksCache {
            ttl_s: 300,
            refresh_interval_s: 30,
            max_stale_s: 86_400,
            verified_ttl_s: 300,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub issuers: Vec<Issuer>,
    #[serde(default = "default_leeway")]
    pub leeway_s: u64,
    #[serde(default = "default_max_token")]
    pub max_token_bytes: usize,
    /// Also accept the token from this cookie when there is no `Authorization` header.
    #[serde(default)]
    pub cookie: Option<String>,
    #[serde(default)]
    pub jwks: JwksCache,
}

impl AuthConfig {
    /// Field-level validation; returns (field, reason).
    pub(crate) fn validate(&self) -> Result<(), (String, String)> {
        for (i, issuer) in self.issuers.iter().enumerate() {
            let field = |f: &str| format!("auth.issuers[{i}].{f}");
            if issuer.iss.is_empty() {
                return Err((field("iss"), "must not be empty".into()));
            }
            if issuer.audience.is_empty() {
                return Err((field("audience"), "must not be empty".into()));
            }
            if issuer.hs256_secret.is_none() && issuer.jwks.is_none() {
                return Err((
                    field("hs256_secret"),
                    "an issuer needs hs256_secret or jwks".into(),
                ));
            }
            if let Some(jwks) = &issuer.jwks {
                if jwks.backends.is_empty() {
                    return Err((field("jwks.backends"), "must list a backend".into()));
                }
                if !jwks.path.starts_with('/') {
                    return Err((field("jwks.path"), "must start with `/`".into()));
                }
                for a in &jwks.algorithms {
                    if !matches!(a.as_str(), "ES256" | "RS256") {
                        return Err((
                            field("jwks.algorithms"),
                            format!("`{a}` is not ES256 or RS256"),
                        ));
                    }
                }
            }
        }
        if self.max_token_bytes == 0 || self.max_token_bytes > 65_536 {
            return Err(("auth.max_token_bytes".into(), "must be 1..=65536".into()));
        }
        if let Some(c) = &self.cookie {
            if c.is_empty() || c.contains([';', '=', ' ']) {
                return Err(("auth.cookie".into(), format!("`{c}` is not a cookie name")));
            }
        }
        Ok(())
    }
}

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

/// Parses a JWKS, keeping the signing keys we can pin to ES256 or RS256. Keys of other
/// types, for encryption, or declaring a different `alg` are skipped, not fatal.
pub fn parse_jwks(json: &[u8]) -> Result<Vec<JwkKey>, JwksError> {
    let doc: Value = serde_json::from_slice(json).map_err(|e| JwksError(e.to_string()))?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| JwksError("no `keys` array".into()))?;
    let mut out = Vec::new();
    for raw in keys {
        let pinned = match (
            raw.get("kty").and_then(Value::as_str),
            raw.get("crv").and_then(Value::as_str),
        ) {
            (Some("EC"), Some("P-256")) => Algorithm::ES256,
            (Some("RSA"), _) => Algorithm::RS256,
            _ => continue,
        };
        if raw
            .get("use")
            .and_then(Value::as_str)
            .is_some_and(|u| u != "sig")
        {
            continue;
        }
        if let Some(declared) = raw.get("alg").and_then(Value::as_str) {
            if declared != alg_name(pinned) {
                continue;
            }
        }
        let Ok(jwk) = serde_json::from_value::<jsonwebtoken::jwk::Jwk>(raw.clone()) else {
            continue;
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        out.push(JwkKey {
            kid: raw.get("kid").and_then(Value::as_str).map(str::to_owned),
            alg: pinned,
            key,
        });
    }
    Ok(out)
}

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::ES256 => "ES256",
        Algorithm::RS256 => "RS256",
        _ => "unsupported",
    }
}

/// Why a token was refused. The `Display` text is the RFC 6750 `error_description`: short,
/// and never echoing the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token too large")]
    TooLarge,
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    #[error("unsupported critical header")]
    UnknownCrit,
    #[error("unknown key id")]
    UnknownKid,
    #[error("invalid signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("untrusted issuer")]
    WrongIssuer,
    #[error("wrong audience")]
    WrongAudience,
    #[error("missing claim: {0}")]
    MissingClaim(&'static str),
}

/// What the edge verified about the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub sub: String,
    pub iss: String,
    pub exp: u64,
    pub uid: Option<String>,
    pub scopes: Vec<String>,
    pub roles: Vec<String>,
    pub claims: serde_json::Map<String, Value>,
}

/// The keys the platform can give us. Implemented by the adapter over the Secret Store and
/// the platform cache; the library only decides when to ask.
pub trait KeySource {
    /// The HS256 key stored under `secret_name`.
    fn hs256_secret(&mut self, secret_name: &str) -> Option<Vec<u8>>;
    /// The issuer's JWKS. With `refresh`, the caller met an unknown `kid`: the source
    /// should fetch again if its rate limit allows, and say `Ok(None)` when it does not.
    fn jwks(&mut self, issuer: &Issuer, refresh: bool) -> Result<Option<Vec<JwkKey>>, JwksError>;

    /// Whether the token with this digest ([`token_digest`]) passed an ES256/RS256 signature
    /// check within its remembered lifetime, as Envoy's `jwt_authn` JWT cache does: a client
    /// sends the same token on every request, and the asymmetric check is by far the most
    /// expensive step of the auth phase. Only the signature is taken on trust; the header,
    /// algorithm, issuer and every claim are checked again. An entry lives no longer than the
    /// JWKS it was checked against stays fresh, so a removed key, or a JWKS that can no longer
    /// be fetched, is noticed on the same schedule as without this memory.
    fn signature_known_good(&mut self, _digest: &[u8; 32]) -> bool {
        false
    }

    /// Records that the token with this digest has a good signature, for `ttl_s` seconds.
    fn remember_good_signature(&mut self, _digest: &[u8; 32], _ttl_s: u64) {}
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

/// A refused request, already shaped as RFC 6750 wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No token where one is required: 401, `WWW-Authenticate: Bearer realm=...`.
    Missing,
    /// 401 with `error="invalid_token"`.
    Invalid(TokenError),
    /// 403 with `error="insufficient_scope"`.
    Forbidden { scope: Vec<String> },
    /// The keys could not be obtained (JWKS unreachable past its stale limit): 503.
    KeysUnavailable(String),
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Vec<String>>,
}

const REALM: &str = "fastgate";

impl AuthFailure {
    pub fn status(&self) -> u16 {
        match self {
            AuthFailure::Missing | AuthFailure::Invalid(_) => 401,
            AuthFailure::Forbidden { .. } => 403,
            AuthFailure::KeysUnavailable(_) => 503,
        }
    }

    /// The `WWW-Authenticate` value (RFC 6750 §3), if any.
    pub fn www_authenticate(&self) -> Option<String> {
        match self {
            AuthFailure::Missing => Some(format!("Bearer realm=\"{REALM}\"")),
            AuthFailure::Invalid(e) => Some(format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{e}\""
            )),
            AuthFailure::Forbidden { scope } => Some(format!(
                "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{}\"",
                scope.join(" ")
            )),
            AuthFailure::KeysUnavailable(_) => None,
        }
    }

    /// The problem `detail`: FastAPI's message where FastAPI has one, so clients reading
    /// `detail` keep working.
    pub fn detail(&self) -> String {
        match self {
            AuthFailure::Missing => "Not authenticated".into(),
            AuthFailure::Invalid(_) => "Invalid token".into(),
            AuthFailure::Forbidden { .. } => "Not enough permissions".into(),
            AuthFailure::KeysUnavailable(why) => format!("token keys unavailable: {why}"),
        }
    }
}

/// Finds the bearer token: `Authorization: Bearer <token>` (scheme case-insensitive), else
/// the configured cookie. `Err` for an `Authorization: Bearer` that carries no usable token.
pub fn extract_token<'a>(
    authorization: Option<&'a str>,
    cookie_header: Option<&'a str>,
    cookie_name: Option<&str>,
) -> Result<Option<&'a str>, TokenError> {
    if let Some(value) = authorization {
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            let token = rest.trim();
            let token68 = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b);
            if token.is_empty() || !token.bytes().all(token68) {
                return Err(TokenError::Malformed("bearer credentials"));
            }
            return Ok(Some(token));
        }
    }
    let (Some(cookies), Some(name)) = (cookie_header, cookie_name) else {
        return Ok(None);
    };
    Ok(cookies
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|v| !v.is_empty()))
}

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
    let mut missing: Vec<String> = route
        .scopes
        .iter()
        .filter(|s| !verified.scopes.contains(s))
        .cloned()
        .collect();
    missing.extend(
        route
            .roles
            .iter()
            .filter(|r| !verified.roles.contains(r))
            .cloned(),
    );
    let claims_ok = route
        .claims
        .iter()
        .all(|(k, v)| verified.claims.get(k) == Some(v));
    if !missing.is_empty() || !claims_ok {
        return Err(AuthFailure::Forbidden {
            scope: route.scopes.clone(),
        });
    }
    Ok(Some(verified))
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

/// Verifies a token against the configured issuers.
pub fn verify(
    token: &str,
    config: &AuthConfig,
    keys: &mut dyn KeySource,
    now: u64,
) -> Result<Verified, AuthFailure> {
    let invalid = AuthFailure::Invalid;
    if token.len() > config.max_token_bytes {
        return Err(invalid(TokenError::TooLarge));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(TokenError::Malformed("not three segments")));
    };
    if s.is_empty() || URL_SAFE_NO_PAD.decode(s).is_err() {
        return Err(invalid(TokenError::Malformed("signature")));
    }
    let header: Header = serde_json::from_value(b64_json(h, "header").map_err(invalid)?)
        .map_err(|_| invalid(TokenError::Malformed("header")))?;
    let payload = b64_json(p, "payload").map_err(invalid)?;
    let alg = match header.alg.as_str() {
        "HS256" => Algorithm::HS256,
        "ES256" => Algorithm::ES256,
        "RS256" => Algorithm::RS256,
        _ => return Err(invalid(TokenError::UnsupportedAlgorithm)),
    };
    match &header.crit {
        Some(list) if list.is_empty() => return Err(invalid(TokenError::Malformed("empty crit"))),
        Some(_) => return Err(invalid(TokenError::UnknownCrit)),
        None => {}
    }
    if header.kid.as_deref().is_some_and(|k| !is_safe_kid(k)) {
        return Err(invalid(TokenError::Malformed("kid")));
    }
    // The issuer is chosen by the (unverified) `iss`, only to know which keys to try.
    let issuer = payload
        .get("iss")
        .and_then(Value::as_str)
        .and_then(|iss| config.issuers.iter().find(|i| i.iss == iss))
        .ok_or(invalid(TokenError::WrongIssuer))?;
    // HS256 costs microseconds: only the asymmetric checks are worth remembering.
    let remembered =
        (alg != Algorithm::HS256 && config.jwks.verified_ttl_s > 0).then(|| token_digest(token));
    let known_good = match &remembered {
        Some(digest) => {
            jwks_allows(issuer, alg)?;
            keys.signature_known_good(digest)
        }
        None => false,
    };
    if !known_good {
        let key = select_key(issuer, alg, header.kid.as_deref(), keys)?;
        let mut validation = Validation::new(alg);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| {
            invalid(match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature
                | jsonwebtoken::errors::ErrorKind::InvalidEcdsaKey
                | jsonwebtoken::errors::ErrorKind::InvalidRsaKey(_) => TokenError::BadSignature,
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                    TokenError::UnsupportedAlgorithm
                }
                _ => TokenError::Malformed("token"),
            })
        })?;
    }
    let verified = check_claims(payload, issuer, config.leeway_s, now).map_err(invalid)?;
    if let (Some(digest), false) = (&remembered, known_good) {
        // Never longer than the key set it was checked against stays fresh: a key removed
        // from the JWKS, or a JWKS that can no longer be fetched, then counts again.
        let ttl = verified
            .exp
            .saturating_sub(now)
            .min(u64::from(config.jwks.verified_ttl_s))
            .min(u64::from(config.jwks.ttl_s));
        if ttl > 0 {
            keys.remember_good_signature(digest, ttl);
        }
    }
    Ok(verified)
}

/// The issuer must have declared this algorithm for its JWKS.
fn jwks_allows(issuer: &Issuer, alg: Algorithm) -> Result<(), AuthFailure> {
    issuer
        .jwks
        .as_ref()
        .filter(|j| j.algorithms.iter().any(|a| a == alg_name(alg)))
        .map(|_| ())
        .ok_or(AuthFailure::Invalid(TokenError::UnsupportedAlgorithm))
}

fn select_key(
    issuer: &Issuer,
    alg: Algorithm,
    kid: Option<&str>,
    keys: &mut dyn KeySource,
) -> Result<DecodingKey, AuthFailure> {
    if alg == Algorithm::HS256 {
        let name = issuer
            .hs256_secret
            .as_deref()
            .ok_or(AuthFailure::Invalid(TokenError::UnsupportedAlgorithm))?;
        let secret = keys
            .hs256_secret(name)
            .ok_or_else(|| AuthFailure::KeysUnavailable("HS256 key missing".into()))?;
        return Ok(DecodingKey::from_secret(&secret));
    }
    jwks_allows(issuer, alg)?;
    let find = |set: &[JwkKey]| -> Option<DecodingKey> {
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
    };
    let unavailable = |e: JwksError| AuthFailure::KeysUnavailable(e.0);
    if let Some(set) = keys.jwks(issuer, false).map_err(unavailable)? {
        if let Some(key) = find(&set) {
            return Ok(key);
        }
    }
    // Unknown kid: the source refreshes at most once per interval; otherwise the negative
    // answer stands.
    match keys.jwks(issuer, true).map_err(unavailable)? {
        Some(set) => find(&set).ok_or(AuthFailure::Invalid(TokenError::UnknownKid)),
        None => Err(AuthFailure::Invalid(TokenError::UnknownKid)),
    }
}

fn numeric(payload: &Value, name: &'static str) -> Result<Option<u64>, TokenError> {
    match payload.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .map(Some)
            .ok_or(TokenError::Malformed("numeric date")),
    }
}

fn check_claims(
    payload: Value,
    issuer: &Issuer,
    leeway: u64,
    now: u64,
) -> Result<Verified, TokenError> {
    let exp = numeric(&payload, "exp")?.ok_or(TokenError::MissingClaim("exp"))?;
    if now > exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    if let Some(nbf) = numeric(&payload, "nbf")? {
        if now.saturating_add(leeway) < nbf {
            return Err(TokenError::NotYetValid);
        }
    }
    let iss = payload
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if iss != issuer.iss {
        return Err(TokenError::WrongIssuer);
    }
    let aud_ok = match payload.get("aud") {
        Some(Value::String(a)) => *a == issuer.audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(&issuer.audience)),
        _ => false,
    };
    if !aud_ok {
        return Err(TokenError::WrongAudience);
    }
    let sub = payload
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(TokenError::MissingClaim("sub"))?
        .to_owned();
    let strings = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut scopes = strings(payload.get("scope"));
    scopes.extend(strings(payload.get("scp")));
    scopes.extend(strings(payload.get("scopes")));
    let roles = strings(payload.get("roles"));
    let uid = payload
        .get("uid")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let Value::Object(claims) = payload else {
        return Err(TokenError::Malformed("payload"));
    };
    Ok(Verified {
        sub,
        iss,
        exp,
        uid,
        scopes,
        roles,
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header as JwtHeader};
    use p256::pkcs8::EncodePrivateKey;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;
    const SECRET: &[u8] = b"hs256-test-secret";

    struct Keys {
        jwks: Vec<JwkKey>,
        refreshed: Vec<JwkKey>,
        fetches: u32,
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

    struct EcKey {
        pem: String,
        jwk: Value,
    }

    fn ec_key(kid: &str) -> EcKey {
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        let pem = secret.to_pkcs8_pem(Default::default()).unwrap().to_string();
        let mut jwk: Value = serde_json::from_str(&secret.public_key().to_jwk_string()).unwrap();
        jwk["kid"] = kid.into();
        jwk["use"] = "sig".into();
        EcKey { pem, jwk }
    }

    fn jwks_of(keys: &[&EcKey]) -> Vec<JwkKey> {
        let doc = json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
        parse_jwks(doc.to_string().as_bytes()).unwrap()
    }

    fn config() -> AuthConfig {
        serde_json::from_value(json!({
            "issuers": [{"iss": "iss-1", "audience": "aud-1", "hs256_secret": "hs",
                "jwks": {"backends": ["b"], "path": "/jwks", "algorithms": ["ES256", "RS256"]}}]
        }))
        .unwrap()
    }

    fn claims() -> Value {
        json!({"sub": "a@b.c", "uid": "u-1", "iss": "iss-1", "aud": "aud-1", "exp": NOW + 600,
               "iat": NOW, "scope": "read write", "roles": ["admin"]})
    }

    fn hs(claims: &Value) -> String {
        jsonwebtoken::encode(
            &JwtHeader::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap()
    }

    fn es(key: &EcKey, kid: &str, claims: &Value) -> String {
        let mut header = JwtHeader::new(Algorithm::ES256);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(
            &header,
            claims,
            &EncodingKey::from_ec_pem(key.pem.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    fn raw(header: &Value, claims: &Value, sig: &str) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            sig
        )
    }

    fn keys(jwks: Vec<JwkKey>) -> Keys {
        Keys {
            refreshed: jwks.clone(),
            jwks,
            fetches: 0,
            refresh_allowed: true,
        }
    }

    fn check(token: &str, keys: &mut Keys) -> Result<Verified, AuthFailure> {
        verify(token, &config(), keys, NOW)
    }

    fn invalid(e: TokenError) -> Result<Verified, AuthFailure> {
        Err(AuthFailure::Invalid(e))
    }

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
    fn time_issuer_and_audience_are_enforced_with_leeway() {
        let mut ks = keys(vec![]);
        let with = |k: &str, v: Value| {
            let mut c = claims();
            c[k] = v;
            hs(&c)
        };
        assert_eq!(
            check(&with("exp", json!(NOW - 31)), &mut ks),
            invalid(TokenError::Expired)
        );
        assert!(
            check(&with("exp", json!(NOW - 29)), &mut ks).is_ok(),
            "inside the leeway"
        );
        assert_eq!(
            check(&with("nbf", json!(NOW + 31)), &mut ks),
            invalid(TokenError::NotYetValid)
        );
        assert!(check(&with("nbf", json!(NOW + 29)), &mut ks).is_ok());
        assert_eq!(
            check(&with("iss", json!("iss-2")), &mut ks),
            invalid(TokenError::WrongIssuer)
        );
        assert_eq!(
            check(&with("aud", json!("aud-2")), &mut ks),
            invalid(TokenError::WrongAudience)
        );
        assert!(check(&with("aud", json!(["x", "aud-1"])), &mut ks).is_ok());
        assert_eq!(
            check(&with("exp", json!("soon")), &mut ks),
            invalid(TokenError::Malformed("numeric date"))
        );
        let mut c = claims();
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            check(&hs(&c), &mut ks),
            invalid(TokenError::MissingClaim("exp"))
        );
        let mut c = claims();
        c.as_object_mut().unwrap().remove("sub");
        assert_eq!(
            check(&hs(&c), &mut ks),
            invalid(TokenError::MissingClaim("sub"))
        );
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

    #[test]
    fn policies_scopes_and_token_sources() {
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
        assert_eq!(
            AuthFailure::Missing.www_authenticate().unwrap(),
            r#"Bearer realm="fastgate""#
        );
        let e = AuthFailure::Invalid(TokenError::Expired)
            .www_authenticate()
            .unwrap();
        assert!(
            e.contains(r#"error="invalid_token", error_description="token expired""#),
            "{e}"
        );

        assert_eq!(
            extract_token(Some("bEaReR abc.def"), None, None),
            Ok(Some("abc.def"))
        );
        assert_eq!(extract_token(Some("Basic dXNlcg=="), None, None), Ok(None));
        assert!(extract_token(Some("Bearer "), None, None).is_err());
        assert!(extract_token(Some("Bearer a b"), None, None).is_err());
        assert_eq!(
            extract_token(None, Some("x=1; session=tok.en"), Some("session")),
            Ok(Some("tok.en"))
        );
        assert_eq!(extract_token(None, Some("x=1"), Some("session")), Ok(None));
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

    /// `Keys` plus a signature memory, counting what reaches the JWKS.
    struct Remembering {
        inner: Keys,
        good: BTreeMap<[u8; 32], u64>,
        jwks_calls: u32,
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
    }

    #[test]
    fn a_verified_asymmetric_signature_is_remembered_but_every_claim_is_checked_again() {
        let key = ec_key("k1");
        let mut keys = Remembering {
            inner: keys(jwks_of(&[&key])),
            good: BTreeMap::new(),
            jwks_calls: 0,
        };
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
}
