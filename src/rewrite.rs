//! Declarative URL rewrites and redirects, applied after routing to the normalised path.
//!
//! Order: `strip_prefix`, then `regex` (with `$1`/`${name}` captures), then `add_prefix`,
//! then the query edits. Whatever a rewrite produces is normalised again and must stay an
//! absolute, dot-free path: a capture from the client's path can never smuggle in a `..`
//! or a `//host` that would send a redirect to another site.

use std::collections::BTreeMap;

use regex_lite::Regex;
use serde::Deserialize;

use crate::config::FieldError;
use crate::path;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RegexRule {
    pub pattern: String,
    pub replace: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct QueryEdits {
    /// Parameters to set (replacing every existing value of that name).
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Parameter names to drop.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// A rewrite as written in the config.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RewriteSpec {
    #[serde(default)]
    pub strip_prefix: Option<String>,
    #[serde(default)]
    pub regex: Option<RegexRule>,
    #[serde(default)]
    pub add_prefix: Option<String>,
    #[serde(default)]
    pub query: QueryEdits,
}

/// Answer with a redirect to the rewritten URL instead of forwarding.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Redirect {
    /// 301, 302, 307 or 308.
    pub status: u16,
}

impl Redirect {
    /// Field-level validation, the field relative to the redirect.
    pub(crate) fn validate(&self) -> Result<(), FieldError> {
        if matches!(self.status, 301 | 302 | 307 | 308) {
            Ok(())
        } else {
            Err(FieldError::new(
                "status",
                format!(
                    "{} is not a redirect status (301, 302, 307, 308)",
                    self.status
                ),
            ))
        }
    }
}

/// A compiled rewrite.
#[derive(Debug, Clone)]
pub struct Rewrite {
    strip_prefix: Option<String>,
    regex: Option<(Regex, String)>,
    add_prefix: Option<String>,
    query: QueryEdits,
}

/// The rewrite produced a path we refuse to send or redirect to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the rewritten path `{0}` is not a safe absolute path")]
pub struct UnsafeRewrite(pub String);

impl RewriteSpec {
    /// Validates and compiles the rewrite; the error's field is relative to the rewrite.
    pub fn compile(&self) -> Result<Rewrite, FieldError> {
        for (field, prefix) in [
            ("strip_prefix", &self.strip_prefix),
            ("add_prefix", &self.add_prefix),
        ] {
            if let Some(p) = prefix {
                if !p.starts_with('/') || p.len() < 2 || p.ends_with('/') {
                    return Err(FieldError::new(
                        field,
                        format!("`{p}` must start with `/` and not end with `/`"),
                    ));
                }
            }
        }
        let regex = match &self.regex {
            Some(rule) => Some((
                Regex::new(&rule.pattern)
                    .map_err(|e| FieldError::new("regex.pattern", e.to_string()))?,
                rule.replace.clone(),
            )),
            None => None,
        };
        for name in self.query.set.keys().chain(&self.query.remove) {
            if name.is_empty() || name.contains(['&', '=', '#', ' ']) {
                return Err(FieldError::new(
                    "query",
                    format!("`{name}` is not a plain parameter name"),
                ));
            }
        }
        Ok(Rewrite {
            strip_prefix: self.strip_prefix.clone(),
            regex,
            add_prefix: self.add_prefix.clone(),
            query: self.query.clone(),
        })
    }
}

impl Rewrite {
    /// Rewrites a normalised path and its raw query.
    pub fn apply(
        &self,
        path_in: &str,
        query: Option<&str>,
    ) -> Result<(String, Option<String>), UnsafeRewrite> {
        let mut out = path_in.to_owned();
        if let Some(prefix) = &self.strip_prefix {
            if let Some(rest) = out.strip_prefix(prefix.as_str()) {
                if rest.is_empty() || rest.starts_with('/') {
                    out = if rest.is_empty() {
                        "/".to_owned()
                    } else {
                        rest.to_owned()
                    };
                }
            }
        }
        if let Some((re, replace)) = &self.regex {
            out = re.replace(&out, replace.as_str()).into_owned();
        }
        if let Some(prefix) = &self.add_prefix {
            out = if out == "/" {
                prefix.clone()
            } else {
                format!("{prefix}{out}")
            };
        }
        if !path::is_safe_target(&out) {
            return Err(UnsafeRewrite(out));
        }
        Ok((out, self.edit_query(query)))
    }

    fn edit_query(&self, query: Option<&str>) -> Option<String> {
        if self.query.set.is_empty() && self.query.remove.is_empty() {
            return query.map(str::to_owned);
        }
        let mut pairs: Vec<String> = query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| {
                let name = p.split_once('=').map_or(*p, |(n, _)| n);
                !self.query.remove.iter().any(|r| r == name) && !self.query.set.contains_key(name)
            })
            .map(str::to_owned)
            .collect();
        pairs.extend(self.query.set.iter().map(|(k, v)| format!("{k}={v}")));
        (!pairs.is_empty()).then(|| pairs.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(json: &str) -> Rewrite {
        serde_json::from_str::<RewriteSpec>(json)
            .unwrap()
            .compile()
            .unwrap()
    }

    #[test]
    fn prefix_swap_maps_v1_to_api() {
        let r = rw(r#"{"strip_prefix":"/v1","add_prefix":"/api"}"#);
        assert_eq!(
            r.apply("/v1/user/7", Some("a=1")).unwrap(),
            ("/api/user/7".into(), Some("a=1".into()))
        );
        assert_eq!(r.apply("/v1", None).unwrap().0, "/api");
        // `/v10/x` does not start with the *segment* `/v1`.
        assert_eq!(r.apply("/v10/x", None).unwrap().0, "/api/v10/x");
    }

    #[test]
    fn regex_captures_and_trailing_slash_strip() {
        let r = rw(r#"{"regex":{"pattern":"^/u/(?P<id>[0-9]+)$","replace":"/api/user/${id}"}}"#);
        assert_eq!(r.apply("/u/42", None).unwrap().0, "/api/user/42");
        let r = rw(r#"{"regex":{"pattern":"^(/.+)/$","replace":"$1"}}"#);
        assert_eq!(r.apply("/api/items/", None).unwrap().0, "/api/items");
    }

    #[test]
    fn captures_cannot_escape_or_change_host() {
        let r = rw(r#"{"regex":{"pattern":"^/go/(.*)$","replace":"/$1"}}"#);
        assert!(r.apply("/go//evil.example", None).is_err());
        let r = rw(r#"{"regex":{"pattern":"^/go/(.*)$","replace":"/x/$1/.."}}"#);
        assert!(r.apply("/go/a", None).is_err());
    }

    #[test]
    fn query_set_and_remove_keep_other_params_in_order() {
        let r = rw(r#"{"query":{"set":{"v":"2"},"remove":["utm_source","debug"]}}"#);
        assert_eq!(
            r.apply("/x", Some("b=1&utm_source=ad&v=1&a=%20&debug"))
                .unwrap()
                .1
                .as_deref(),
            Some("b=1&a=%20&v=2")
        );
        let r = rw(r#"{"query":{"remove":["only"]}}"#);
        assert_eq!(r.apply("/x", Some("only=1")).unwrap().1, None);
    }

    #[test]
    fn config_errors_name_the_field() {
        let e = serde_json::from_str::<RewriteSpec>(r#"{"regex":{"pattern":"(","replace":""}}"#)
            .unwrap()
            .compile()
            .unwrap_err();
        assert_eq!(e.field, "regex.pattern");
        let e = serde_json::from_str::<RewriteSpec>(r#"{"add_prefix":"api/"}"#)
            .unwrap()
            .compile()
            .unwrap_err();
        assert_eq!(e.field, "add_prefix");
        assert!(Redirect { status: 200 }.validate().is_err());
    }
}
