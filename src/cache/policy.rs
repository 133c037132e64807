//! What a route asks of the cache (`cache` on a route) and what every cached route shares
//! (the global `cache` settings). Validated at load, so a request never meets a policy the
//! rules cannot honour, and a bad one is refused naming the field.

use serde::Deserialize;

use super::surrogate::{render_template, MAX_SURROGATE_KEY_BYTES, SUBJECT_PLACEHOLDER};
use crate::config::FieldError;
use crate::http::is_token;

/// Default `max_object_bytes`: 1 MiB.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 1024 * 1024;
/// The longest TTL or stale window a route may configure: a year.
pub const MAX_CONFIG_TTL_S: u32 = 31_536_000;

/// Who may share a cached response.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CacheMode {
    /// One copy for everyone (RFC 9111 shared-cache rules, including §3.5 for requests that
    /// carry `Authorization`).
    Public,
    /// One copy per verified subject: the key includes a hash of the subject, so no user can
    /// ever be answered with another user's response.
    #[serde(alias = "per-user")]
    PerUser,
}

/// One `vary` input of a route: something besides the URL that selects the response.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum VaryInput {
    /// The `Fastgate-Flags` value the edge computed for this caller (written `flags`).
    Flags,
    /// A request header's value; the name is stored lower-case.
    Header(String),
}

/// A `vary` entry that is neither `flags` nor a header name we can key on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("vary input `{0}` is not `flags` or a header name")]
pub struct BadVaryInput(pub String);

impl TryFrom<String> for VaryInput {
    type Error = BadVaryInput;

    fn try_from(s: String) -> Result<Self, BadVaryInput> {
        if s == "flags" {
            Ok(VaryInput::Flags)
        } else if is_token(&s) {
            Ok(VaryInput::Header(s.to_ascii_lowercase()))
        } else {
            Err(BadVaryInput(s))
        }
    }
}

impl VaryInput {
    /// The name this input is keyed under: `flags` or the lower-case header name.
    pub fn as_str(&self) -> &str {
        match self {
            VaryInput::Flags => "flags",
            VaryInput::Header(h) => h,
        }
    }
}

fn default_max_object_bytes() -> u64 {
    DEFAULT_MAX_OBJECT_BYTES
}

/// A route's `cache` field. Absent means the route is not cached.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CachePolicy {
    /// `"public"` or `"per_user"`.
    pub mode: CacheMode,
    /// A fixed freshness lifetime. When absent, freshness comes from the origin's headers.
    #[serde(default)]
    pub ttl_s: Option<u32>,
    /// RFC 5861 §3 window, combined with the origin's own (the larger wins).
    #[serde(default)]
    pub stale_while_revalidate_s: u32,
    /// RFC 5861 §4 window, combined with the origin's own (the larger wins).
    #[serde(default)]
    pub stale_if_error_s: u32,
    /// Surrogate-key templates attached to stored responses, e.g. `items`, `user:{sub}`.
    #[serde(default)]
    pub surrogate_keys: Vec<String>,
    /// Inputs added to the key: request header names, or `flags`.
    #[serde(default)]
    pub vary: Vec<VaryInput>,
    /// Responses larger than this are not stored.
    #[serde(default = "default_max_object_bytes")]
    pub max_object_bytes: u64,
}

impl CachePolicy {
    /// Field-level validation; the error's field is relative to the policy (`ttl_s`,
    /// `vary[1]`).
    pub fn validate(&self) -> Result<(), FieldError> {
        for (field, value) in [
            ("ttl_s", self.ttl_s.unwrap_or(0)),
            ("stale_while_revalidate_s", self.stale_while_revalidate_s),
            ("stale_if_error_s", self.stale_if_error_s),
        ] {
            if value > MAX_CONFIG_TTL_S {
                return Err(FieldError::new(
                    field,
                    format!("{value} is more than {MAX_CONFIG_TTL_S} (a year)"),
                ));
            }
        }
        if self.max_object_bytes == 0 {
            return Err(FieldError::new("max_object_bytes", "must be positive"));
        }
        validate_templates(&self.surrogate_keys, self.mode == CacheMode::PerUser)
            .map_err(|e| e.under("surrogate_keys"))?;
        self.validate_vary()
    }

    /// Refuses vary inputs that would key on a credential or on a header the edge itself
    /// rewrites, and duplicates (which would only hide a typo).
    fn validate_vary(&self) -> Result<(), FieldError> {
        for (i, input) in self.vary.iter().enumerate() {
            let reason = match input.as_str() {
                "authorization" => {
                    "keying on the token would cache per token; use mode `per_user`".to_owned()
                }
                "fastgate-flags" => {
                    "the edge replaces Fastgate-Flags; write `flags` to vary on its value"
                        .to_owned()
                }
                _ if self.vary[..i].contains(input) => {
                    format!("`{}` is listed twice", input.as_str())
                }
                _ => continue,
            };
            return Err(FieldError::new(format!("vary[{i}]"), reason));
        }
        Ok(())
    }

    /// Whether a body of `len` bytes may be stored (the adapter checks the real length when the
    /// origin sent no `Content-Length`).
    pub fn admits_size(&self, len: u64) -> bool {
        len <= self.max_object_bytes
    }
}

/// Validates surrogate-key (or purge) templates; the field is `[i]`, relative to the list.
/// `{sub}` is the only placeholder, allowed only where a subject exists (`allow_subject`).
pub fn validate_templates<T: AsRef<str>>(
    templates: &[T],
    allow_subject: bool,
) -> Result<(), FieldError> {
    for (i, t) in templates.iter().enumerate() {
        let t = t.as_ref();
        let field = format!("[{i}]");
        let has_sub = t.contains(SUBJECT_PLACEHOLDER);
        if has_sub && !allow_subject {
            return Err(FieldError::new(
                field,
                format!("`{t}` uses {{sub}}, which needs a verified subject (cache mode `per_user`; for `purge`, an authenticated route)"),
            ));
        }
        if t.replace(SUBJECT_PLACEHOLDER, "").contains(['{', '}']) {
            return Err(FieldError::new(
                field,
                format!("`{t}`: the only placeholder is {{sub}}"),
            ));
        }
        if render_template(t, Some("0000000000000000")).is_none() {
            return Err(FieldError::new(
                field,
                format!(
                    "`{t}` is not a surrogate key (visible ASCII, no spaces, \
                     1..={MAX_SURROGATE_KEY_BYTES} bytes)"
                ),
            ));
        }
    }
    Ok(())
}

/// The global `cache` settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// Query parameters that never change the response (tracking): dropped from the key.
    pub drop_query_params: Vec<String>,
}

/// Marketing and click-tracking parameters: they identify a campaign, not a resource.
pub const DEFAULT_DROP_QUERY_PARAMS: [&str; 7] = [
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "gclid",
    "fbclid",
];

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            drop_query_params: DEFAULT_DROP_QUERY_PARAMS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }
}

impl CacheSettings {
    /// Field-level validation; the error's field is relative to the settings
    /// (`drop_query_params[1]`).
    pub fn validate(&self) -> Result<(), FieldError> {
        for (i, name) in self.drop_query_params.iter().enumerate() {
            if name.is_empty()
                || name
                    .bytes()
                    .any(|b| matches!(b, b'&' | b'=' | b'#') || b <= b' ' || b == 0x7f)
            {
                return Err(FieldError::new(
                    format!("drop_query_params[{i}]"),
                    format!("`{name}` is not a plain parameter name"),
                ));
            }
        }
        Ok(())
    }

    /// Whether a query parameter is one the key ignores.
    pub(super) fn drops(&self, name: &str) -> bool {
        self.drop_query_params.iter().any(|d| d == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::{policy, public};

    #[test]
    fn config_shapes_and_defaults() {
        let p = policy(
            r#"{"mode":"per_user","ttl_s":30,"stale_while_revalidate_s":10,
                "stale_if_error_s":300,"surrogate_keys":["items","user:{sub}"],
                "vary":["Accept-Language","flags"],"max_object_bytes":2048}"#,
        );
        assert_eq!(p.mode, CacheMode::PerUser);
        assert_eq!(p.ttl_s, Some(30));
        assert_eq!(
            p.vary,
            vec![
                VaryInput::Header("accept-language".into()),
                VaryInput::Flags
            ]
        );
        let p = public();
        assert_eq!(p.ttl_s, None);
        assert_eq!((p.stale_while_revalidate_s, p.stale_if_error_s), (0, 0));
        assert_eq!(p.max_object_bytes, 1024 * 1024);
        assert!(p.surrogate_keys.is_empty() && p.vary.is_empty());
        assert_eq!(
            serde_json::from_str::<CachePolicy>(r#"{"mode":"per-user"}"#)
                .unwrap()
                .mode,
            CacheMode::PerUser
        );
        let s: CacheSettings = serde_json::from_str("{}").unwrap();
        assert!(s.drop_query_params.contains(&"gclid".to_owned()));
        assert!(s.drop_query_params.contains(&"utm_source".to_owned()));
        s.validate().unwrap();
        let s: CacheSettings = serde_json::from_str(r#"{"drop_query_params":["ref"]}"#).unwrap();
        assert_eq!(s.drop_query_params, vec!["ref".to_owned()]);
    }

    #[test]
    fn config_errors_name_the_field() {
        for (json, field) in [
            (r#"{"mode":"public","ttl_s":99999999}"#, "ttl_s"),
            (
                r#"{"mode":"public","stale_if_error_s":99999999}"#,
                "stale_if_error_s",
            ),
            (
                r#"{"mode":"public","max_object_bytes":0}"#,
                "max_object_bytes",
            ),
            (
                r#"{"mode":"public","surrogate_keys":["user:{sub}"]}"#,
                "surrogate_keys[0]",
            ),
            (
                r#"{"mode":"per_user","surrogate_keys":["a","{user}"]}"#,
                "surrogate_keys[1]",
            ),
            (
                r#"{"mode":"per_user","surrogate_keys":["has space"]}"#,
                "surrogate_keys[0]",
            ),
            (
                r#"{"mode":"public","surrogate_keys":[""]}"#,
                "surrogate_keys[0]",
            ),
            (r#"{"mode":"public","vary":["Authorization"]}"#, "vary[0]"),
            (
                r#"{"mode":"public","vary":["x","fastgate-flags"]}"#,
                "vary[1]",
            ),
            (r#"{"mode":"public","vary":["X-A","x-a"]}"#, "vary[1]"),
        ] {
            let p: CachePolicy = serde_json::from_str(json).unwrap();
            assert_eq!(p.validate().unwrap_err().field, field, "{json}");
        }
        for bad in [
            r#"{"mode":"private"}"#,
            r#"{"mode":"public","ttl":5}"#,
            r#"{"mode":"public","vary":["bad header"]}"#,
            r#"{"mode":"public","ttl_s":-1}"#,
            r#"{}"#,
        ] {
            assert!(serde_json::from_str::<CachePolicy>(bad).is_err(), "{bad}");
        }
        let s = CacheSettings {
            drop_query_params: vec!["ok".into(), "a=b".into()],
        };
        assert_eq!(s.validate().unwrap_err().field, "drop_query_params[1]");
        assert!(serde_json::from_str::<CacheSettings>(r#"{"drop":[]}"#).is_err());
        assert_eq!(
            VaryInput::try_from("a b".to_owned())
                .unwrap_err()
                .to_string(),
            "vary input `a b` is not `flags` or a header name"
        );
        assert_eq!(
            validate_templates(&["items:{sub}"], false)
                .unwrap_err()
                .field,
            "[0]"
        );
        validate_templates(&["items", "user:{sub}"], true).unwrap();
    }
}
