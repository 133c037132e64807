//! The gateway's typed configuration.
//!
//! An embedded default (`config/default.json`) makes `fastly compute serve` work out of the
//! box; ops may override it later through a Config Store entry. Either way it goes through
//! [`Config::parse`], which rejects unknown fields and dangling backend names *at load*,
//! naming the offending field, so a bad config never turns into a storm of 500s.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::route::Route;

/// The configuration compiled into the Wasm binary.
pub const EMBEDDED: &str = include_str!("../config/default.json");

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

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Operator-chosen label of this config revision; surfaced in logs.
    pub version: String,
    pub backends: BTreeMap<String, Backend>,
    pub geo: GeoMap,
    pub routes: Vec<Route>,
}

/// Why a configuration was rejected. Every variant names the field at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
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
        let config: Config =
            serde_json::from_str(json).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The embedded default. It is validated by unit tests, so this cannot fail in a
    /// shipped binary; should it ever, the error says which field.
    pub fn embedded() -> Result<Self, ConfigError> {
        Self::parse(EMBEDDED)
    }

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
        let mut seen = std::collections::BTreeSet::new();
        for (i, route) in self.routes.iter().enumerate() {
            let field = format!("routes[{i}]");
            if !seen.insert(route.id.as_str()) {
                return Err(ConfigError::Invalid {
                    field: format!("{field}.id"),
                    reason: format!("duplicate route id `{}`", route.id),
                });
            }
            route
                .validate()
                .map_err(|(sub, reason)| ConfigError::Invalid {
                    field: format!("{field}.{sub}"),
                    reason,
                })?;
            if let Some(list) = &route.backends {
                self.check_backend_list(&format!("{field}.backends"), list)?;
            }
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
        assert!(err.unwrap_err().to_string().contains("routes[2].backends[0]"));
        let err = with(|v| v["routes"][1]["id"] = "health".into());
        assert!(err.unwrap_err().to_string().contains("routes[1].id"));
    }

    #[test]
    fn malformed_json_is_a_syntax_error() {
        assert!(matches!(
            Config::parse("{not json"),
            Err(ConfigError::Syntax(_))
        ));
    }
}
