//! The config's `static` section: how static routes serve the release's files. Read with
//! the rest of the config and compiled into a [`StaticPolicy`] at load, so a bad pattern
//! or header value is refused then, naming its field, and never met per request.

use serde::Deserialize;

use super::static_files::{PathPattern, StaticPolicy};
use crate::config::FieldError;

/// `static` as written.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StaticSettings {
    /// The file answering extension-less paths that are not files (a single-page app's
    /// `/index.html`); absent: such paths are 404.
    pub spa_fallback: Option<String>,
    /// `max-age` of HTML and other unhashed files. 0 (the default): revalidate on every
    /// use, a 304 when unchanged, so the next navigation after a release switch gets the
    /// new HTML and never an old page pointing at assets that are gone.
    pub html_max_age_s: u64,
    /// Ops overrides of `Cache-Control`, first match wins.
    pub cache_control: Vec<CacheControlRule>,
    /// `Content-Security-Policy` on HTML answers. Absent: [`DEFAULT_CSP`], which allows
    /// only this origin's own scripts, styles, images and fetches, and no framing (the
    /// dashboard is not clickjackable); `""` sends none.
    pub content_security_policy: Option<String>,
}

/// The HTML pages' default policy: everything from this origin only, nothing inline, never
/// framed. The front end (`web/`) is built to need no more.
pub const DEFAULT_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; \
form-action 'self'; frame-ancestors 'none'";

/// One ops rule: `{"path": "/fonts/*", "value": "public, max-age=86400"}`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CacheControlRule {
    /// `/exact`, `/prefix/*` or `*.suffix`.
    pub path: String,
    pub value: String,
}

/// The longest `html_max_age_s`: a day. Longer, and a release switch would not reach
/// browsers holding an old page for that long.
const MAX_HTML_AGE_S: u64 = 86_400;

impl StaticSettings {
    /// The policy the static phase applies; errors name the field under `static`.
    pub fn compile(&self) -> Result<StaticPolicy, FieldError> {
        if self.html_max_age_s > MAX_HTML_AGE_S {
            let reason = format!("must be at most {MAX_HTML_AGE_S} (a day)");
            return Err(FieldError::new("html_max_age_s", reason));
        }
        let mut cache_control = Vec::with_capacity(self.cache_control.len());
        for (i, rule) in self.cache_control.iter().enumerate() {
            let pattern = PathPattern::parse(&rule.path)
                .map_err(|e| FieldError::new(format!("cache_control[{i}].path"), e.to_string()))?;
            cache_control.push((pattern, rule.value.clone()));
        }
        let policy = StaticPolicy {
            spa_fallback: self.spa_fallback.clone(),
            cache_control,
            html_max_age_s: self.html_max_age_s,
            content_security_policy: self
                .content_security_policy
                .clone()
                .unwrap_or_else(|| DEFAULT_CSP.to_owned()),
        };
        policy.validate().map_err(|e| {
            let field = match &e {
                super::ReleaseError::BadHeaderValue { field } if field.starts_with("cache") => {
                    format!("{field}.value")
                }
                super::ReleaseError::BadHeaderValue { field } => field.clone(),
                _ => "spa_fallback".to_owned(),
            };
            FieldError::new(field, e.to_string())
        })?;
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: &str) -> StaticSettings {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn defaults_revalidate_html_and_have_no_fallback() {
        let p = settings("{}").compile().unwrap();
        assert_eq!(p.html_max_age_s, 0);
        assert!(p.spa_fallback.is_none() && p.cache_control.is_empty());
    }

    #[test]
    fn errors_name_the_field() {
        let bad = settings(r#"{"cache_control": [{"path": "fonts", "value": "x"}]}"#);
        assert_eq!(bad.compile().unwrap_err().field, "cache_control[0].path");
        let bad = settings(r#"{"cache_control": [{"path": "/a", "value": "x\n"}]}"#);
        assert_eq!(bad.compile().unwrap_err().field, "cache_control[0].value");
        let bad = settings(r#"{"spa_fallback": "index.html"}"#);
        assert_eq!(bad.compile().unwrap_err().field, "spa_fallback");
        let bad = settings(r#"{"html_max_age_s": 100000}"#);
        assert_eq!(bad.compile().unwrap_err().field, "html_max_age_s");
        assert!(serde_json::from_str::<StaticSettings>(r#"{"spa": 1}"#).is_err());
    }
}
