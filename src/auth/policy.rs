//! What the config says about auth: each route's policy, the issuers we trust and where
//! their keys come from, and the limits every token is held to. Validated at load, so a
//! route can never point at an issuer that could not verify anything.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::config::FieldError;

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
    /// other check still runs each time. Never longer than `ttl_s`, what is left of the
    /// freshness of the cached key set that vouched for it, or the token's `exp`. 0 turns it
    /// off. See
    /// [`KeySource::signature_known_good`](super::KeySource::signature_known_good).
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
    /// Field-level validation; the field is relative to the auth section (`issuers[0].iss`).
    pub(crate) fn validate(&self) -> Result<(), FieldError> {
        for (i, issuer) in self.issuers.iter().enumerate() {
            issuer
                .validate()
                .map_err(|e| e.under(&format!("issuers[{i}]")))?;
        }
        if self.max_token_bytes == 0 || self.max_token_bytes > 65_536 {
            return Err(FieldError::new("max_token_bytes", "must be 1..=65536"));
        }
        if let Some(c) = &self.cookie {
            if c.is_empty() || c.contains([';', '=', ' ']) {
                return Err(FieldError::new(
                    "cookie",
                    format!("`{c}` is not a cookie name"),
                ));
            }
        }
        Ok(())
    }
}

impl Issuer {
    fn validate(&self) -> Result<(), FieldError> {
        if self.iss.is_empty() {
            return Err(FieldError::new("iss", "must not be empty"));
        }
        if self.audience.is_empty() {
            return Err(FieldError::new("audience", "must not be empty"));
        }
        if self.hs256_secret.is_none() && self.jwks.is_none() {
            return Err(FieldError::new(
                "hs256_secret",
                "an issuer needs hs256_secret or jwks",
            ));
        }
        match &self.jwks {
            Some(jwks) => jwks.validate().map_err(|e| e.under("jwks")),
            None => Ok(()),
        }
    }
}

impl JwksSource {
    fn validate(&self) -> Result<(), FieldError> {
        if self.backends.is_empty() {
            return Err(FieldError::new("backends", "must list a backend"));
        }
        if !self.path.starts_with('/') {
            return Err(FieldError::new("path", "must start with `/`"));
        }
        match self
            .algorithms
            .iter()
            .find(|a| !matches!(a.as_str(), "ES256" | "RS256"))
        {
            Some(a) => Err(FieldError::new(
                "algorithms",
                format!("`{a}` is not ES256 or RS256"),
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refusal(config: Value) -> (String, String) {
        let config: AuthConfig = serde_json::from_value(config).unwrap();
        let e = config.validate().unwrap_err().under("auth");
        (e.field, e.reason)
    }

    /// Each refusal names the field as the config spells it, relative to the auth section.
    #[test]
    fn validation_names_the_field() {
        let issuer = |extra: Value| {
            let mut i = json!({"iss": "i", "audience": "a", "hs256_secret": "hs"});
            i.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            json!({"issuers": [{"iss": "ok", "audience": "a", "hs256_secret": "hs"}, i]})
        };
        let ok: AuthConfig = serde_json::from_value(issuer(json!({}))).unwrap();
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(
            refusal(issuer(json!({"iss": ""}))),
            ("auth.issuers[1].iss".into(), "must not be empty".into())
        );
        assert_eq!(
            refusal(issuer(json!({"audience": ""}))),
            (
                "auth.issuers[1].audience".into(),
                "must not be empty".into()
            )
        );
        assert_eq!(
            refusal(issuer(json!({"hs256_secret": null}))),
            (
                "auth.issuers[1].hs256_secret".into(),
                "an issuer needs hs256_secret or jwks".into()
            )
        );
        let jwks = |j: Value| issuer(json!({ "jwks": j }));
        assert_eq!(
            refusal(jwks(
                json!({"backends": [], "path": "/j", "algorithms": []})
            )),
            (
                "auth.issuers[1].jwks.backends".into(),
                "must list a backend".into()
            )
        );
        assert_eq!(
            refusal(jwks(
                json!({"backends": ["b"], "path": "j", "algorithms": []})
            )),
            (
                "auth.issuers[1].jwks.path".into(),
                "must start with `/`".into()
            )
        );
        assert_eq!(
            refusal(jwks(
                json!({"backends": ["b"], "path": "/j", "algorithms": ["ES256", "HS256"]})
            )),
            (
                "auth.issuers[1].jwks.algorithms".into(),
                "`HS256` is not ES256 or RS256".into()
            )
        );
        assert_eq!(
            refusal(json!({"issuers": [], "max_token_bytes": 0})),
            ("auth.max_token_bytes".into(), "must be 1..=65536".into())
        );
        assert_eq!(
            refusal(json!({"issuers": [], "cookie": "a=b"})),
            ("auth.cookie".into(), "`a=b` is not a cookie name".into())
        );
    }
}
