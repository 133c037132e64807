//! The gateway's typed configuration.
//!
//! An embedded default (`config/default.json`) makes `fastly compute serve` work out of the
//! box; ops may override it later through a Config Store entry. Either way it goes through
//! [`Config::parse`], which rejects unknown fields and dangling backend names *at load*,
//! naming the offending field, so a bad config never turns into a storm of 500s.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::auth::AuthConfig;
use crate::cache::CacheSettings;
use crate::cors::CorsPolicy;
use crate::flags::{self, FlagSpec};
use crate::route::{self, Route, RouteSpec};

/// The configuration compiled into the Wasm binary: `config/default.json`, minified by
/// `build.rs` (parsing it is per-request work; see [`Config::embedded`]).
pub const EMBEDDED: &str = include_str!(concat!(env!("OUT_DIR"), "/default.min.json"));

/// A named origin backend. The name must match a backend declared to the platform
/// (`fastly.toml` locally, the service's backends in production).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    /// Free-form region label, used in logs and docs.
    pub region: String,
}

/// Client location → ordered backend list. Lookup order: country, continent, default.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GeoMap {
    /// ISO 3166-1 alpha-2 country code → backends, most preferred first.
    #[serde(default)]
    pub countries: BTreeMap<String, Vec<String>>,
    /// Two-letter continent code (`AF`, `AN`, `AS`, `EU`, `NA`, `OC`, `SA`) → backends.
    #[serde(default)]
    pub continents: BTreeMap<String, Vec<String>>,
    /// Used when the client's location is unknown or unmapped.
    pub default: Vec<String>,
}

/// How hard the edge tries other backends when one fails.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Failover {
    /// Most backends one request may try (the first attempt included).
    pub max_attempts: u8,
    /// Overall budget for all attempts of one request; no new attempt starts after it.
    pub deadline_ms: u64,
    /// How long a failed backend is skipped by later requests before a probe re-admits it.
    pub down_for_s: u32,
    /// Default time one attempt may wait for the response headers (routes may override).
    pub attempt_timeout_ms: u64,
}

impl Default for Failover {
    fn default() -> Self {
        Failover {
            max_attempts: 3,
            deadline_ms: 15_000,
            down_for_s: 10,
            attempt_timeout_ms: 10_000,
        }
    }
}

/// The config file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    version: String,
    backends: BTreeMap<String, Backend>,
    geo: GeoMap,
    routes: Vec<RouteSpec>,
    #[serde(default)]
    failover: Failover,
    auth: AuthConfig,
    /// Feature flags evaluated at the edge and sent to the origin in `Fastgate-Flags`.
    #[serde(default)]
    flags: BTreeMap<String, FlagSpec>,
    /// Named CORS policies; routes refer to one by name (a route group).
    #[serde(default)]
    cors: BTreeMap<String, CorsPolicy>,
    #[serde(default)]
    rate_limiter: Limiter,
    /// Settings shared by every cached route (the per-route policy is the route's `cache`).
    #[serde(default)]
    cache: CacheSettings,
    /// Fastly log endpoint for the per-request JSON line; absent: stdout (Viceroy prints it,
    /// and on Fastly it reaches log tailing).
    #[serde(default)]
    log_endpoint: Option<String>,
}

/// Which counter enforces route rate limits.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Limiter {
    /// Counters in the platform's Core Cache: exact, and enforced under Viceroy too.
    #[default]
    CoreCache,
    /// Fastly Edge Rate Limiting (production; a no-op stub under Viceroy).
    Erl,
}

/// A validated, compiled configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Operator-chosen label of this config revision; surfaced in logs and headers.
    pub version: String,
    /// FNV-1a 64 of the source text: tells two revisions with the same label apart.
    pub hash: String,
    pub backends: BTreeMap<String, Backend>,
    pub geo: GeoMap,
    pub routes: Vec<Route>,
    pub failover: Failover,
    pub auth: AuthConfig,
    pub flags: BTreeMap<String, FlagSpec>,
    pub cors: BTreeMap<String, CorsPolicy>,
    pub rate_limiter: Limiter,
    pub cache: CacheSettings,
    pub log_endpoint: Option<String>,
}

/// Where the active config came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Embedded,
    Override,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Embedded => "embedded",
            Source::Override => "override",
        }
    }
}

/// The config in force for a request, and why.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub source: Source,
    /// Set when an override existed but was rejected; the adapter logs it.
    pub rejected_override: Option<ConfigError>,
    /// Set when a flags override existed but was rejected (field, reason).
    pub rejected_flags: Option<ConfigError>,
}

/// Chooses the config: a valid override wins; an invalid one is reported and the embedded
/// default is used instead, so a bad push degrades to "no change", never to errors.
///
/// `flags_json` (the Config Store's `flags` entry) then overrides individual flags, all or
/// nothing, so ops can flip a flag without pushing a whole config.
pub fn load(override_json: Option<&str>, flags_json: Option<&str>) -> Result<Loaded, ConfigError> {
    let mut rejected_override = None;
    let mut chosen = None;
    if let Some(json) = override_json.filter(|j| !j.trim().is_empty()) {
        match Config::parse(json) {
            Ok(config) => chosen = Some((config, Source::Override)),
            Err(e) => rejected_override = Some(e),
        }
    }
    let (mut config, source) = match chosen {
        Some(c) => c,
        None => (Config::embedded()?, Source::Embedded),
    };
    let rejected_flags = flags_json.and_then(|json| {
        flags::apply_overrides(&mut config.flags, json)
            .err()
            .map(|(field, reason)| ConfigError::Invalid { field, reason })
    });
    Ok(Loaded {
        config,
        source,
        rejected_override,
        rejected_flags,
    })
}

fn fnv1a64(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Why a configuration was rejected. Every variant names the field at fault.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("config is not valid JSON for the schema: {0}")]
    Syntax(String),
    #[error("`{field}` names unknown backend `{name}`")]
    UnknownBackend { field: String, name: String },
    #[error("`{field}` must list at least one backend")]
    EmptyBackendList { field: String },
    #[error("`{field}` is invalid: {reason}")]
    Invalid { field: String, reason: String },
}

const CONTINENTS: [&str; 7] = ["AF", "AN", "AS", "EU", "NA", "OC", "SA"];

impl Config {
    /// Parses and validates a JSON config.
    pub fn parse(json: &str) -> Result<Self, ConfigError> {
        Self::parse_checked(json, true)
    }

    /// `validate: false` skips the cross-field checks (backend names, geo lists, issuers,
    /// CORS and rate-limit fields); only for text already known to pass them.
    fn parse_checked(json: &str, validate: bool) -> Result<Self, ConfigError> {
        let file: ConfigFile =
            serde_json::from_str(json).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        if validate {
            file.validate()?;
        }
        let routes = route::compile_table(&file.routes)
            .map_err(|(field, reason)| ConfigError::Invalid { field, reason })?;
        Ok(Config {
            version: file.version,
            hash: fnv1a64(json),
            backends: file.backends,
            geo: file.geo,
            routes,
            failover: file.failover,
            auth: file.auth,
            flags: file.flags,
            cors: file.cors,
            rate_limiter: file.rate_limiter,
            cache: file.cache,
            log_endpoint: file.log_endpoint,
        })
    }

    /// The embedded default, parsed without re-running the cross-field validation: the
    /// text is fixed at build time and `embedded_default_passes_full_validation` checks
    /// exactly that text, so per request only parsing and route compilation remain (which
    /// still fail loudly, naming the field). An override from the Config Store is always
    /// validated in full ([`load`]).
    pub fn embedded() -> Result<Self, ConfigError> {
        Self::parse_checked(EMBEDDED, false)
    }
}

impl ConfigFile {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.backends.is_empty() {
            return Err(ConfigError::Invalid {
                field: "backends".into(),
                reason: "at least one backend is required".into(),
            });
        }
        for name in self.backends.keys() {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(ConfigError::Invalid {
                    field: format!("backends.{name}"),
                    reason: "backend names use only ASCII letters, digits, `_` and `-`".into(),
                });
            }
        }
        for (code, list) in &self.geo.countries {
            if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(ConfigError::Invalid {
                    field: format!("geo.countries.{code}"),
                    reason: "country codes are two upper-case letters (ISO 3166-1 alpha-2)".into(),
                });
            }
            self.check_backend_list(&format!("geo.countries.{code}"), list)?;
        }
        for (code, list) in &self.geo.continents {
            if !CONTINENTS.contains(&code.as_str()) {
                return Err(ConfigError::Invalid {
                    field: format!("geo.continents.{code}"),
                    reason: format!("continent codes are one of {}", CONTINENTS.join(", ")),
                });
            }
            self.check_backend_list(&format!("geo.continents.{code}"), list)?;
        }
        self.check_backend_list("geo.default", &self.geo.default)?;
        for (i, route) in self.routes.iter().enumerate() {
            if let Some(list) = &route.backends {
                self.check_backend_list(&format!("routes[{i}].backends"), list)?;
            }
        }
        self.auth
            .validate()
            .map_err(|(field, reason)| ConfigError::Invalid { field, reason })?;
        for (i, issuer) in self.auth.issuers.iter().enumerate() {
            if let Some(jwks) = &issuer.jwks {
                self.check_backend_list(
                    &format!("auth.issuers[{i}].jwks.backends"),
                    &jwks.backends,
                )?;
            }
        }
        let invalid = |(field, reason): (String, String)| ConfigError::Invalid { field, reason };
        flags::validate_flags(&self.flags).map_err(invalid)?;
        for (name, policy) in &self.cors {
            policy
                .validate()
                .map_err(|(f, r)| invalid((format!("cors.{name}.{f}"), r)))?;
        }
        for (i, route) in self.routes.iter().enumerate() {
            if let Some(name) = &route.cors {
                if !self.cors.contains_key(name) {
                    return Err(invalid((
                        format!("routes[{i}].cors"),
                        format!("no CORS policy named `{name}`"),
                    )));
                }
            }
            if let Some(limit) = &route.rate_limit {
                limit
                    .validate()
                    .map_err(|(f, r)| invalid((format!("routes[{i}].rate_limit.{f}"), r)))?;
            }
        }
        self.cache
            .validate()
            .map_err(|(f, r)| invalid((format!("cache.{f}"), r)))?;
        let f = &self.failover;
        if f.max_attempts == 0
            || f.deadline_ms == 0
            || f.down_for_s == 0
            || f.attempt_timeout_ms == 0
        {
            return Err(ConfigError::Invalid {
                field: "failover".into(),
                reason:
                    "max_attempts, deadline_ms, down_for_s and attempt_timeout_ms must be positive"
                        .into(),
            });
        }
        Ok(())
    }

    fn check_backend_list(&self, field: &str, list: &[String]) -> Result<(), ConfigError> {
        if list.is_empty() {
            return Err(ConfigError::EmptyBackendList {
                field: field.into(),
            });
        }
        for (i, name) in list.iter().enumerate() {
            if !self.backends.contains_key(name) {
                return Err(ConfigError::UnknownBackend {
                    field: format!("{field}[{i}]"),
                    name: name.clone(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(edit: impl FnOnce(&mut serde_json::Value)) -> Result<Config, ConfigError> {
        let mut v: serde_json::Value = serde_json::from_str(EMBEDDED).unwrap();
        edit(&mut v);
        Config::parse(&v.to_string())
    }

    #[test]
    fn embedded_default_passes_full_validation() {
        let full = Config::parse(EMBEDDED).expect("embedded config must validate");
        let fast = Config::embedded().unwrap();
        assert_eq!(full.hash, fast.hash);
        assert_eq!(full.routes.len(), fast.routes.len());
        // The minified text is the file's content.
        let file: serde_json::Value =
            serde_json::from_str(include_str!("../config/default.json")).unwrap();
        assert_eq!(
            file,
            serde_json::from_str::<serde_json::Value>(EMBEDDED).unwrap()
        );
    }

    #[test]
    fn embedded_default_is_valid_and_has_the_three_origins() {
        let c = Config::embedded().expect("embedded config must validate");
        let names: Vec<_> = c.backends.keys().map(String::as_str).collect();
        assert_eq!(names, ["origin_ap", "origin_eu", "origin_us"]);
        assert!(!c.routes.is_empty());
    }

    #[test]
    fn unknown_field_is_rejected_by_name() {
        let err = with(|v| v["geo"]["regions"] = serde_json::json!({})).unwrap_err();
        assert!(err.to_string().contains("unknown field `regions`"), "{err}");
    }

    #[test]
    fn unknown_backend_in_geo_map_names_the_field() {
        let err = with(|v| v["geo"]["continents"]["EU"][1] = "origin_mars".into()).unwrap_err();
        assert_eq!(
            err,
            ConfigError::UnknownBackend {
                field: "geo.continents.EU[1]".into(),
                name: "origin_mars".into()
            }
        );
    }

    #[test]
    fn empty_default_list_is_rejected() {
        let err = with(|v| v["geo"]["default"] = serde_json::json!([])).unwrap_err();
        assert_eq!(
            err,
            ConfigError::EmptyBackendList {
                field: "geo.default".into()
            }
        );
    }

    #[test]
    fn bad_codes_are_rejected() {
        let err = with(|v| v["geo"]["continents"]["XX"] = serde_json::json!(["origin_us"]));
        assert!(err.unwrap_err().to_string().contains("geo.continents.XX"));
        let err = with(|v| v["geo"]["countries"]["usa"] = serde_json::json!(["origin_us"]));
        assert!(err.unwrap_err().to_string().contains("geo.countries.usa"));
    }

    #[test]
    fn route_errors_name_the_route_index() {
        let err = with(|v| v["routes"][1]["path"] = serde_json::json!({"prefix": "api"}));
        assert!(err.unwrap_err().to_string().contains("routes[1].path"));
        let err = with(|v| v["routes"][2]["backends"] = serde_json::json!(["nope"]));
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("routes[2].backends[0]"));
        let err = with(|v| v["routes"][1]["id"] = "health".into());
        assert!(err.unwrap_err().to_string().contains("routes[1].id"));
        let err = with(|v| {
            v["routes"][0]["rewrite"] =
                serde_json::json!({"regex": {"pattern": "(", "replace": ""}})
        });
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("routes[0].rewrite.regex.pattern"));
    }

    #[test]
    fn an_invalid_override_falls_back_to_the_embedded_config() {
        let loaded = load(Some(r#"{"version":"x"}"#), None).unwrap();
        assert_eq!(loaded.source, Source::Embedded);
        assert!(loaded
            .rejected_override
            .unwrap()
            .to_string()
            .contains("missing field"));
        let mut v: serde_json::Value = serde_json::from_str(EMBEDDED).unwrap();
        v["version"] = "ops-2".into();
        let loaded = load(Some(&v.to_string()), None).unwrap();
        assert_eq!(loaded.source, Source::Override);
        assert_eq!(loaded.config.version, "ops-2");
        assert_ne!(loaded.config.hash, Config::embedded().unwrap().hash);
        assert_eq!(load(None, None).unwrap().source, Source::Embedded);
        let flipped = load(None, Some(r#"{"new_schema": {"enabled": true}}"#)).unwrap();
        assert_eq!(flipped.config.flags["new_schema"], FlagSpec::Switch(true));
        let bad = load(None, Some(r#"{"new_shcema": {"enabled": true}}"#)).unwrap();
        assert!(bad
            .rejected_flags
            .unwrap()
            .to_string()
            .contains("flags.new_shcema"));
    }

    #[test]
    fn malformed_json_is_a_syntax_error() {
        assert!(matches!(
            Config::parse("{not json"),
            Err(ConfigError::Syntax(_))
        ));
    }
}
