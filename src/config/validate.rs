//! The cross-field checks serde cannot express: every backend a list names is declared,
//! geo codes are real codes, routes name existing CORS policies, and each part's own
//! field checks pass. Run once per override at load, so a bad push is refused whole.

mod coverage;

use std::collections::BTreeMap;

use super::model::ConfigFile;
use super::{ConfigError, FieldError};
use crate::flags;
use crate::geo::CONTINENTS;
use crate::ratelimit::{LimitKey, MAX_LOGIN_BODY};
use crate::route;

impl ConfigFile {
    /// Every check, in the order a reader meets the fields; the first failure is reported.
    /// `table` is `self.routes` compiled (the coverage check probes it).
    pub(super) fn validate(&self, table: &[route::Route]) -> Result<(), ConfigError> {
        self.check_backends()?;
        self.check_geo()?;
        for (i, route) in self.routes.iter().enumerate() {
            if let Some(list) = &route.backends {
                self.check_backend_list(&format!("routes[{i}].backends"), list)?;
            }
        }
        self.auth.validate().map_err(|e| e.under("auth"))?;
        for (i, issuer) in self.auth.issuers.iter().enumerate() {
            if let Some(jwks) = &issuer.jwks {
                let field = format!("auth.issuers[{i}].jwks.backends");
                self.check_backend_list(&field, &jwks.backends)?;
            }
        }
        flags::validate_flags(&self.flags)?;
        for (name, policy) in &self.cors {
            policy
                .validate()
                .map_err(|e| e.under(&format!("cors.{name}")))?;
        }
        self.check_route_references()?;
        self.check_limit_groups()?;
        self.check_login_bodies()?;
        self.cache.validate().map_err(|e| e.under("cache"))?;
        self.check_failover()?;
        self.check_rate_limit_coverage(table)?;
        Ok(())
    }

    fn check_backends(&self) -> Result<(), FieldError> {
        if self.backends.is_empty() {
            return Err(FieldError::new(
                "backends",
                "at least one backend is required",
            ));
        }
        for name in self.backends.keys() {
            let valid = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
            if name.is_empty() || !name.bytes().all(valid) {
                return Err(FieldError::new(
                    format!("backends.{name}"),
                    "backend names use only ASCII letters, digits, `_` and `-`",
                ));
            }
        }
        Ok(())
    }

    fn check_geo(&self) -> Result<(), ConfigError> {
        for (code, list) in &self.geo.countries {
            let field = format!("geo.countries.{code}");
            if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(FieldError::new(
                    field,
                    "country codes are two upper-case letters (ISO 3166-1 alpha-2)",
                )
                .into());
            }
            self.check_backend_list(&field, list)?;
        }
        for (code, list) in &self.geo.continents {
            let field = format!("geo.continents.{code}");
            if !CONTINENTS.contains(&code.as_str()) {
                return Err(FieldError::new(
                    field,
                    format!("continent codes are one of {}", CONTINENTS.join(", ")),
                )
                .into());
            }
            self.check_backend_list(&field, list)?;
        }
        self.check_backend_list("geo.default", &self.geo.default)
    }

    /// A route's CORS policy exists, and its rate limit is well formed.
    fn check_route_references(&self) -> Result<(), FieldError> {
        for (i, route) in self.routes.iter().enumerate() {
            if let Some(name) = &route.cors {
                if !self.cors.contains_key(name) {
                    return Err(FieldError::new(
                        format!("routes[{i}].cors"),
                        format!("no CORS policy named `{name}`"),
                    ));
                }
            }
            if let Some(limit) = &route.rate_limit {
                limit
                    .validate()
                    .map_err(|e| e.under(&format!("routes[{i}].rate_limit")))?;
            }
        }
        Ok(())
    }

    /// Routes of one limit group share one counter, so they must agree on the limit: the
    /// first route of a group sets it, and a later one that differs is named.
    fn check_limit_groups(&self) -> Result<(), FieldError> {
        let mut first = BTreeMap::new();
        for (i, route) in self.routes.iter().enumerate() {
            let Some(limit) = &route.rate_limit else {
                continue;
            };
            let group = limit.group(&route.id);
            match first.get(group) {
                None => {
                    first.insert(group, (i, limit));
                }
                Some((j, earlier)) if !limit.same_limit(earlier) => {
                    return Err(FieldError::new(
                        format!("routes[{i}].rate_limit"),
                        format!(
                            "differs from routes[{j}] (`{}`) in the group `{group}`: a group \
                             is one counter, so its routes share one key, limit, window and \
                             penalty",
                            self.routes[*j].id
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// A login-keyed limit finds the account in the body, reading at most
    /// [`MAX_LOGIN_BODY`] bytes of it; a larger body would be keyed on the client alone while
    /// the origin still checks its password. So such a route accepts no larger body.
    fn check_login_bodies(&self) -> Result<(), FieldError> {
        for (i, route) in self.routes.iter().enumerate() {
            if !route
                .rate_limit
                .as_ref()
                .is_some_and(|l| l.key == LimitKey::Login)
            {
                continue;
            }
            let (field, max) = match route.max_body_bytes {
                Some(max) => (format!("routes[{i}].max_body_bytes"), max),
                None => (
                    "limits.max_body_bytes".to_owned(),
                    self.limits.max_body_bytes,
                ),
            };
            if max > MAX_LOGIN_BODY as u64 {
                return Err(FieldError::new(
                    field,
                    format!(
                        "{max} is over {MAX_LOGIN_BODY}, the most of a body the `login` rate \
                         limit of route `{}` reads: set that route's `max_body_bytes` to at \
                         most {MAX_LOGIN_BODY}",
                        route.id
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Every route that reaches an expensive origin handler has a limit or a reasoned
    /// opt-out (`validate/coverage.rs`), probing the compiled table.
    fn check_rate_limit_coverage(&self, table: &[route::Route]) -> Result<(), FieldError> {
        coverage::check(
            &self.routes,
            table,
            self.expensive_paths.as_deref(),
            &self.unlimited_routes,
        )
    }

    fn check_failover(&self) -> Result<(), FieldError> {
        let f = &self.failover;
        if f.max_attempts == 0
            || f.deadline_ms == 0
            || f.down_for_s == 0
            || f.attempt_timeout_ms == 0
        {
            return Err(FieldError::new(
                "failover",
                "max_attempts, deadline_ms, down_for_s and attempt_timeout_ms must be positive",
            ));
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
    use super::super::{Config, ConfigError, EMBEDDED};

    fn with(edit: impl FnOnce(&mut serde_json::Value)) -> Result<Config, ConfigError> {
        let mut v: serde_json::Value = serde_json::from_str(EMBEDDED).unwrap();
        edit(&mut v);
        Config::parse(&v.to_string())
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
    fn a_login_limited_route_accepts_no_body_its_limit_cannot_read() {
        let over = (crate::ratelimit::MAX_LOGIN_BODY + 1) as u64;
        let err = with(|v| v["limits"] = serde_json::json!({"max_body_bytes": over}));
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("`limits.max_body_bytes`"),
            "the login routes inherit the global limit"
        );
        let v: serde_json::Value = serde_json::from_str(EMBEDDED).unwrap();
        let login = v["routes"]
            .as_array()
            .unwrap()
            .iter()
            .position(|r| r["id"] == "login")
            .unwrap();
        let err = with(|v| v["routes"][login]["max_body_bytes"] = over.into()).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("routes[{login}].max_body_bytes")),
            "{err}"
        );
        // Raised globally, with the login routes kept at what their limit reads: fine.
        with(|v| {
            v["limits"] = serde_json::json!({"max_body_bytes": over});
            for route in v["routes"].as_array_mut().unwrap() {
                if route["rate_limit"]["key"] == "login" {
                    route["max_body_bytes"] = 16_384.into();
                }
            }
        })
        .unwrap();
    }

    #[test]
    fn routes_of_one_limit_group_share_one_limit() {
        let err = with(|v| {
            for route in v["routes"].as_array_mut().unwrap() {
                if route["id"] == "v1-compat" {
                    route["rate_limit"]["limit"] = 500.into();
                }
            }
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(".rate_limit") && err.contains("group `api`") && err.contains("(`api`)"),
            "{err}"
        );
        let err = with(|v| v["routes"][3]["rate_limit"]["group"] = "a b".into()).unwrap_err();
        assert!(
            err.to_string().contains("routes[3].rate_limit.group"),
            "{err}"
        );
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
}
