//! CORS at the edge, with the Fetch standard's semantics.
//!
//! Preflights (`OPTIONS` + `Origin` + `Access-Control-Request-Method`) are answered here and
//! never reach the origin: [`preflight`] says which headers to send, or why to refuse (the
//! adapter turns a [`Preflight::Denied`] into a 403 problem+json). Actual responses are
//! decorated by [`decorate`].
//!
//! Choices worth knowing:
//! - An allowed origin is **echoed**, never answered with `*`, except under a policy that
//!   lists `*` (which [`CorsPolicy::validate`] refuses together with credentials). At run time a
//!   `*` entry under `allow_credentials` matches nothing: an unvalidated policy fails closed
//!   instead of reflecting every origin with credentials.
//! - `Vary: Origin` is sent whenever the policy is in force, even when the origin is absent or
//!   refused, so a shared cache never serves one origin's variant to another. The adapter must
//!   *append* these `Vary` values to the origin's, never replace them.
//! - The CORS-safelisted methods (`GET`, `HEAD`, `POST`) always pass a preflight, as in the
//!   browser's own check: refusing them here would add no protection, only surprise. Other
//!   methods compare case-sensitively (HTTP methods are case-sensitive; browsers upper-case only
//!   the well-known ones).
//! - `*` in `allowed_methods`/`allowed_headers` allows any, answered by echoing what was asked
//!   (so it works with credentials too); as in Fetch, a `*` header wildcard never covers
//!   `Authorization`, which must be listed by name.
//! - Origins compare ASCII case-insensitively; every value echoed back has been checked
//!   against the config character by character, so nothing the client sent is reflected
//!   unvetted.

use serde::Deserialize;

use crate::config::FieldError;
use crate::http::is_token;

pub const ALLOW_ORIGIN: &str = "Access-Control-Allow-Origin";
pub const ALLOW_METHODS: &str = "Access-Control-Allow-Methods";
pub const ALLOW_HEADERS: &str = "Access-Control-Allow-Headers";
pub const ALLOW_CREDENTIALS: &str = "Access-Control-Allow-Credentials";
pub const EXPOSE_HEADERS: &str = "Access-Control-Expose-Headers";
pub const MAX_AGE: &str = "Access-Control-Max-Age";
pub const VARY: &str = "Vary";

/// `Vary` on an actual response: the answer depends on the request's `Origin`.
pub const VARY_ACTUAL: &str = "Origin";
/// `Vary` on a preflight answer: it also depends on what the preflight asked for.
pub const VARY_PREFLIGHT: &str =
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";

/// Firefox's cap on `Access-Control-Max-Age` (Chromium caps at 7200): more is never honoured.
pub const MAX_AGE_LIMIT_S: u32 = 86_400;

fn default_max_age() -> u32 {
    600
}

/// A route group's CORS policy as written in the config.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CorsPolicy {
    /// `https://app.example.com` (exact), `https://*.example.com` (one or more subdomain
    /// labels, never the bare domain, same scheme and port), or `*` (any origin; not with
    /// credentials).
    pub allowed_origins: Vec<String>,
    /// Methods a preflight may ask for beyond `GET`/`HEAD`/`POST`; `*` for any.
    #[serde(default)]
    pub allowed_methods: Vec<String>,
    /// Request headers a preflight may ask for (case-insensitive); `*` for any but
    /// `Authorization`.
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    /// Response headers the page's script may read beyond the safelisted ones.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// Send `Access-Control-Allow-Credentials: true` (cookies, HTTP auth).
    #[serde(default)]
    pub allow_credentials: bool,
    /// How long the browser may cache a preflight answer (default 600 s, at most 86400).
    #[serde(default = "default_max_age")]
    pub max_age_s: u32,
}

/// The answer to a preflight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preflight {
    /// Not a CORS preflight (no `Origin` or no `Access-Control-Request-Method`): route it as
    /// an ordinary request.
    NotCors,
    /// Answer at the edge (204) with exactly these headers.
    Allowed(Vec<(&'static str, String)>),
    /// Answer 403 problem+json with this reason as the detail.
    Denied(String),
}

/// One DNS-ish label: letters, digits and `-`.
fn is_label(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn is_labels(s: &str) -> bool {
    s.split('.').all(is_label)
}

/// Checks `host[:port]` for a scheme; `wildcard` when it followed `*.`.
fn check_authority(scheme: &str, authority: &str, wildcard: bool) -> Result<(), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        if wildcard {
            return Err("a wildcard cannot precede an IP address".into());
        }
        let Some((v6, after)) = rest.split_once(']') else {
            return Err("unterminated `[` in the host".into());
        };
        if v6.is_empty()
            || !v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err("malformed IPv6 host".into());
        }
        match after {
            "" => (authority, None),
            p if p.starts_with(':') => (&authority[..authority.len() - p.len()], Some(&p[1..])),
            _ => return Err("unexpected text after the IPv6 host".into()),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if !host.starts_with('[') && !is_labels(host) {
        return Err(
            "the host must be dot-separated labels of letters, digits and `-` (no path, no `/`)"
                .into(),
        );
    }
    if wildcard && !host.contains('.') {
        return Err("`*.` must be followed by at least two labels (`*.example.com`)".into());
    }
    if let Some(port) = port {
        let n: u16 = match port.parse() {
            Ok(n) if n > 0 && port.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(format!("`{port}` is not a port")),
        };
        let default = if scheme.eq_ignore_ascii_case("https") {
            443
        } else {
            80
        };
        if n == default {
            return Err(format!(
                "browsers omit the default port {n}: write the origin without it"
            ));
        }
    }
    Ok(())
}

/// Validates one `allowed_origins` entry.
fn check_origin_entry(entry: &str) -> Result<(), String> {
    if entry == "*" {
        return Ok(());
    }
    if entry.eq_ignore_ascii_case("null") {
        return Err(
            "`null` is the origin of sandboxes and local files: allowing it allows anyone".into(),
        );
    }
    let Some((scheme, rest)) = entry.split_once("://") else {
        return Err(format!("`{entry}` is not `scheme://host[:port]`"));
    };
    if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
        return Err(format!("`{entry}`: the scheme must be http or https"));
    }
    let (wildcard, authority) = match rest.strip_prefix("*.") {
        Some(a) => (true, a),
        None => (false, rest),
    };
    if authority.contains('*') {
        return Err(format!(
            "`{entry}`: only one leading `*.` label is supported (`https://*.example.com`)"
        ));
    }
    check_authority(scheme, authority, wildcard).map_err(|r| format!("`{entry}`: {r}"))
}

impl CorsPolicy {
    /// Field-level validation, the field relative to the policy.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.allowed_origins.is_empty() {
            return Err(FieldError::new(
                "allowed_origins",
                "must list at least one origin",
            ));
        }
        for (i, entry) in self.allowed_origins.iter().enumerate() {
            if entry == "*" && self.allow_credentials {
                return Err(FieldError::new(
                    format!("allowed_origins[{i}]"),
                    "`*` cannot be combined with allow_credentials (browsers refuse it): list \
                     the origins",
                ));
            }
            check_origin_entry(entry)
                .map_err(|reason| FieldError::new(format!("allowed_origins[{i}]"), reason))?;
        }
        for (field, list) in [
            ("allowed_methods", &self.allowed_methods),
            ("allowed_headers", &self.allowed_headers),
            ("expose_headers", &self.expose_headers),
        ] {
            for (i, item) in list.iter().enumerate() {
                if item != "*" && !is_token(item) {
                    return Err(FieldError::new(
                        format!("{field}[{i}]"),
                        format!("`{item}` is not an HTTP token"),
                    ));
                }
            }
        }
        if self.allow_credentials && self.expose_headers.iter().any(|h| h == "*") {
            return Err(FieldError::new(
                "expose_headers",
                "`*` is a literal name, not a wildcard, with allow_credentials: list the headers",
            ));
        }
        if self.max_age_s > MAX_AGE_LIMIT_S {
            return Err(FieldError::new(
                "max_age_s",
                format!("at most {MAX_AGE_LIMIT_S} (browsers cap it lower still)"),
            ));
        }
        Ok(())
    }

    /// Whether `origin` may read responses, and the `Access-Control-Allow-Origin` value.
    fn allow_origin(&self, origin: &str) -> Option<String> {
        // Only visible ASCII is ever echoed, whatever an unvalidated policy says.
        let echoable = origin.bytes().all(|b| b.is_ascii_graphic());
        for entry in &self.allowed_origins {
            if entry == "*" {
                if !self.allow_credentials {
                    return Some("*".to_owned());
                }
            } else if echoable && origin_matches(entry, origin) {
                return Some(origin.to_owned());
            }
        }
        None
    }

    fn method_allowed(&self, method: &str) -> bool {
        matches!(method, "GET" | "HEAD" | "POST")
            || self.allowed_methods.iter().any(|m| m == "*" || m == method)
    }

    fn header_allowed(&self, name: &str) -> bool {
        self.allowed_headers.iter().any(|h| {
            h.eq_ignore_ascii_case(name)
                || (h == "*" && !name.eq_ignore_ascii_case("authorization"))
        })
    }
}

/// Does `origin` match one (non-`*`) `allowed_origins` entry?
fn origin_matches(entry: &str, origin: &str) -> bool {
    let Some((scheme, suffix)) = entry.split_once("://*.") else {
        return entry.eq_ignore_ascii_case(origin);
    };
    let Some((o_scheme, o_rest)) = origin.split_once("://") else {
        return false;
    };
    if !o_scheme.eq_ignore_ascii_case(scheme) || o_rest.len() < suffix.len() + 2 {
        return false;
    }
    let split = o_rest.len() - suffix.len();
    if !o_rest.is_char_boundary(split) {
        return false;
    }
    let (labels, tail) = o_rest.split_at(split);
    // `labels` is `a.` or `a.b.`: at least one whole label, then the dot before the suffix.
    tail.eq_ignore_ascii_case(suffix)
        && labels
            .strip_suffix('.')
            .is_some_and(|l| !l.is_empty() && is_labels(l))
}

/// Answers a preflight. `origin`, `request_method` and `request_headers` are the values of
/// `Origin`, `Access-Control-Request-Method` and `Access-Control-Request-Headers` (the caller
/// joins repeated `Access-Control-Request-Headers` lines with `,`).
pub fn preflight(
    policy: &CorsPolicy,
    origin: Option<&str>,
    request_method: Option<&str>,
    request_headers: Option<&str>,
) -> Preflight {
    let (Some(origin), Some(method)) = (origin, request_method) else {
        return Preflight::NotCors;
    };
    let Some(allow_origin) = policy.allow_origin(origin) else {
        return Preflight::Denied("the origin is not allowed".into());
    };
    let method = method.trim_matches([' ', '\t']);
    if !is_token(method) {
        return Preflight::Denied("Access-Control-Request-Method is not a method".into());
    }
    if !policy.method_allowed(method) {
        return Preflight::Denied(format!("method `{method}` is not allowed"));
    }
    for name in header_names(request_headers) {
        if !is_token(name) {
            return Preflight::Denied(
                "Access-Control-Request-Headers is not a list of header names".into(),
            );
        }
        if !policy.header_allowed(name) {
            return Preflight::Denied(format!("header `{name}` is not allowed"));
        }
    }
    Preflight::Allowed(preflight_headers(
        policy,
        allow_origin,
        method,
        request_headers,
    ))
}

/// The names in an `Access-Control-Request-Headers` value, empty list items skipped.
fn header_names(value: Option<&str>) -> impl Iterator<Item = &str> {
    value
        .unwrap_or("")
        .split(',')
        .map(|h| h.trim_matches([' ', '\t']))
        .filter(|h| !h.is_empty())
}

/// The answer to an allowed preflight; a wildcard method or header list echoes what was
/// asked for (the headers already checked by [`preflight`]).
fn preflight_headers(
    policy: &CorsPolicy,
    allow_origin: String,
    method: &str,
    request_headers: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(6);
    out.push((ALLOW_ORIGIN, allow_origin));
    let methods =
        if policy.allowed_methods.is_empty() || policy.allowed_methods.iter().any(|m| m == "*") {
            method.to_owned()
        } else {
            policy.allowed_methods.join(", ")
        };
    out.push((ALLOW_METHODS, methods));
    if policy.allowed_headers.iter().any(|h| h == "*") {
        let echoed: Vec<&str> = header_names(request_headers).collect();
        if !echoed.is_empty() {
            out.push((ALLOW_HEADERS, echoed.join(", ")));
        }
    } else if !policy.allowed_headers.is_empty() {
        out.push((ALLOW_HEADERS, policy.allowed_headers.join(", ")));
    }
    if policy.allow_credentials {
        out.push((ALLOW_CREDENTIALS, "true".to_owned()));
    }
    out.push((MAX_AGE, policy.max_age_s.min(MAX_AGE_LIMIT_S).to_string()));
    out.push((VARY, VARY_PREFLIGHT.to_owned()));
    out
}

/// Headers for an actual (non-preflight) response under `policy`: the allow headers when the
/// origin is allowed, and `Vary: Origin` always.
pub fn decorate(policy: &CorsPolicy, origin: Option<&str>) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(4);
    if let Some(allow_origin) = origin.and_then(|o| policy.allow_origin(o)) {
        out.push((ALLOW_ORIGIN, allow_origin));
        if policy.allow_credentials {
            out.push((ALLOW_CREDENTIALS, "true".to_owned()));
        }
        if !policy.expose_headers.is_empty() {
            out.push((EXPOSE_HEADERS, policy.expose_headers.join(", ")));
        }
    }
    out.push((VARY, VARY_ACTUAL.to_owned()));
    out
}

/// Whether a response header is a CORS response header (`Access-Control-*`). On a route
/// whose CORS the edge owns, the origin's are dropped before the edge adds its own (see
/// [`origin_vary_without_cors`]): otherwise an origin that mirrors any `Origin` with
/// credentials would grant what the edge's policy refuses, and a cached copy would carry
/// one caller's grant to the next.
pub fn is_cors_response_header(name: &str) -> bool {
    name.as_bytes()
        .get(..15)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"access-control-"))
}

/// The origin's `Vary` (all its field lines) on a route whose CORS the edge owns, without
/// the members CORS put there: `Origin`, which the edge adds back once, and
/// `Access-Control-Request-Method` / `-Headers`, which only a preflight varies on, and
/// preflights never reach the origin here. Other members keep their order, duplicates
/// (any case) once; `None` when nothing is left.
pub fn origin_vary_without_cors<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut kept: Vec<&str> = Vec::new();
    for member in values.into_iter().flat_map(|v| v.split(',')) {
        let member = member.trim_matches([' ', '\t']);
        let cors = member.eq_ignore_ascii_case("origin")
            || member.eq_ignore_ascii_case("access-control-request-method")
            || member.eq_ignore_ascii_case("access-control-request-headers");
        if !member.is_empty() && !cors && !kept.iter().any(|k| k.eq_ignore_ascii_case(member)) {
            kept.push(member);
        }
    }
    (!kept.is_empty()).then(|| kept.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(origins: &[&str]) -> CorsPolicy {
        CorsPolicy {
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            allowed_methods: vec!["GET".into(), "PUT".into(), "DELETE".into()],
            allowed_headers: vec!["Content-Type".into(), "Authorization".into()],
            expose_headers: vec!["X-Request-Id".into(), "RateLimit".into()],
            allow_credentials: true,
            max_age_s: 600,
        }
    }

    fn header<'a>(h: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
        h.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn allowed(p: Preflight) -> Vec<(&'static str, String)> {
        match p {
            Preflight::Allowed(h) => h,
            other => panic!("expected Allowed, got {other:?}"),
        }
    }

    fn denied(p: Preflight) -> String {
        match p {
            Preflight::Denied(r) => r,
            other => panic!("expected Denied, got {other:?}"),
        }
    }

    #[test]
    fn parses_config_json_with_defaults() {
        let p: CorsPolicy = serde_json::from_str(
            r#"{"allowed_origins": ["https://app.example.com"], "allowed_methods": ["PUT"]}"#,
        )
        .unwrap();
        assert_eq!(p.max_age_s, 600);
        assert!(!p.allow_credentials);
        assert!(p.allowed_headers.is_empty());
        p.validate().unwrap();
        let unknown = serde_json::from_str::<CorsPolicy>(
            r#"{"allowed_origins": ["https://a.example"], "allow_origin": "*"}"#,
        );
        assert!(unknown.is_err());
    }

    #[test]
    fn exact_origin_preflight_answers_every_header() {
        let p = policy(&["https://app.example.com"]);
        let h = allowed(preflight(
            &p,
            Some("https://app.example.com"),
            Some("PUT"),
            Some("content-type, authorization"),
        ));
        assert_eq!(
            h,
            vec![
                (ALLOW_ORIGIN, "https://app.example.com".to_owned()),
                (ALLOW_METHODS, "GET, PUT, DELETE".to_owned()),
                (ALLOW_HEADERS, "Content-Type, Authorization".to_owned()),
                (ALLOW_CREDENTIALS, "true".to_owned()),
                (MAX_AGE, "600".to_owned()),
                (
                    VARY,
                    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
                        .to_owned()
                ),
            ]
        );
    }

    #[test]
    fn not_cors_without_origin_or_request_method() {
        let p = policy(&["https://app.example.com"]);
        assert_eq!(preflight(&p, None, Some("PUT"), None), Preflight::NotCors);
        assert_eq!(
            preflight(&p, Some("https://app.example.com"), None, None),
            Preflight::NotCors
        );
    }

    #[test]
    fn denies_other_origins_methods_and_headers() {
        let p = policy(&["https://app.example.com"]);
        let r = denied(preflight(
            &p,
            Some("https://evil.example"),
            Some("GET"),
            None,
        ));
        assert!(r.contains("origin"), "{r}");
        let r = denied(preflight(
            &p,
            Some("https://app.example.com"),
            Some("PATCH"),
            None,
        ));
        assert!(r.contains("PATCH"), "{r}");
        // Methods are case-sensitive; browsers do not upper-case `patch`.
        denied(preflight(
            &p,
            Some("https://app.example.com"),
            Some("put"),
            None,
        ));
        let r = denied(preflight(
            &p,
            Some("https://app.example.com"),
            Some("PUT"),
            Some("content-type, x-secret"),
        ));
        assert!(r.contains("x-secret"), "{r}");
        let r = denied(preflight(
            &p,
            Some("https://app.example.com"),
            Some("PUT"),
            Some("content-type, bad header"),
        ));
        assert!(r.contains("list of header names"), "{r}");
        denied(preflight(
            &p,
            Some("https://app.example.com"),
            Some(""),
            None,
        ));
        denied(preflight(&p, Some(""), Some("GET"), None));
        denied(preflight(&p, Some("null"), Some("GET"), None));
    }

    #[test]
    fn safelisted_methods_always_pass_and_headers_compare_case_insensitively() {
        let mut p = policy(&["https://app.example.com"]);
        p.allowed_methods.clear();
        let h = allowed(preflight(
            &p,
            Some("https://app.example.com"),
            Some("POST"),
            Some("CONTENT-TYPE,,  Authorization "),
        ));
        assert_eq!(header(&h, ALLOW_METHODS), Some("POST"));
        denied(preflight(
            &p,
            Some("https://app.example.com"),
            Some("PUT"),
            None,
        ));
    }

    #[test]
    fn wildcard_matches_subdomains_only() {
        let p = policy(&["https://*.example.com"]);
        for ok in [
            "https://app.example.com",
            "https://a.b.example.com",
            "HTTPS://App.Example.COM",
            "https://x-1.example.com",
        ] {
            let h = decorate(&p, Some(ok));
            assert_eq!(header(&h, ALLOW_ORIGIN), Some(ok), "{ok}");
        }
        for bad in [
            "https://example.com",
            "https://.example.com",
            "https://a..example.com",
            "http://app.example.com",
            "https://app.example.com:8443",
            "https://evilexample.com",
            "https://app.example.com.evil.net",
            "https://evil.net/.example.com",
            "https://evil.net#.example.com",
            "https://user@x.example.com",
            "wss://app.example.com",
            "https://é.example.com",
            "app.example.com",
            "",
        ] {
            let h = decorate(&p, Some(bad));
            assert_eq!(header(&h, ALLOW_ORIGIN), None, "{bad}");
            assert!(matches!(
                preflight(&p, Some(bad), Some("GET"), None),
                Preflight::Denied(_)
            ));
        }
    }

    #[test]
    fn wildcard_with_port_requires_that_port() {
        let p = policy(&["https://*.example.com:8443"]);
        assert!(header(
            &decorate(&p, Some("https://a.example.com:8443")),
            ALLOW_ORIGIN
        )
        .is_some());
        assert!(header(&decorate(&p, Some("https://a.example.com")), ALLOW_ORIGIN).is_none());
        assert!(header(
            &decorate(&p, Some("https://a.example.com:9443")),
            ALLOW_ORIGIN
        )
        .is_none());
    }

    #[test]
    fn star_without_credentials_answers_star() {
        let mut p = policy(&["*"]);
        p.allow_credentials = false;
        p.validate().unwrap();
        let h = allowed(preflight(
            &p,
            Some("https://anyone.test"),
            Some("GET"),
            None,
        ));
        assert_eq!(header(&h, ALLOW_ORIGIN), Some("*"));
        assert_eq!(header(&h, ALLOW_CREDENTIALS), None);
        let h = decorate(&p, Some("null"));
        assert_eq!(header(&h, ALLOW_ORIGIN), Some("*"));
        assert_eq!(header(&h, VARY), Some("Origin"));
    }

    #[test]
    fn credentials_never_with_star() {
        let p = policy(&["*"]);
        let FieldError { field, reason } = p.validate().unwrap_err();
        assert_eq!(field, "allowed_origins[0]");
        assert!(reason.contains("allow_credentials"));
        // Even unvalidated, `*` + credentials matches nothing rather than reflecting anyone.
        denied(preflight(
            &p,
            Some("https://anyone.test"),
            Some("GET"),
            None,
        ));
        let h = decorate(&p, Some("https://anyone.test"));
        assert_eq!(h, vec![(VARY, "Origin".to_owned())]);
        // A listed origin still works next to the invalid `*`, echoed, never `*`.
        let p = policy(&["*", "https://app.example.com"]);
        let h = decorate(&p, Some("https://app.example.com"));
        assert_eq!(header(&h, ALLOW_ORIGIN), Some("https://app.example.com"));
        let mut p = policy(&["https://app.example.com"]);
        p.expose_headers = vec!["*".into()];
        assert_eq!(p.validate().unwrap_err().field, "expose_headers");
    }

    #[test]
    fn vary_origin_is_always_present_on_actual_responses() {
        let p = policy(&["https://app.example.com"]);
        for origin in [
            None,
            Some("https://evil.example"),
            Some("https://app.example.com"),
        ] {
            let h = decorate(&p, origin);
            assert_eq!(header(&h, VARY), Some("Origin"), "{origin:?}");
        }
        assert_eq!(decorate(&p, None), vec![(VARY, "Origin".to_owned())]);
        let h = decorate(&p, Some("https://app.example.com"));
        assert_eq!(
            h,
            vec![
                (ALLOW_ORIGIN, "https://app.example.com".to_owned()),
                (ALLOW_CREDENTIALS, "true".to_owned()),
                (EXPOSE_HEADERS, "X-Request-Id, RateLimit".to_owned()),
                (VARY, "Origin".to_owned()),
            ]
        );
    }

    #[test]
    fn header_and_method_wildcards_echo_but_never_cover_authorization() {
        let mut p = policy(&["https://app.example.com"]);
        p.allowed_methods = vec!["*".into()];
        p.allowed_headers = vec!["*".into()];
        let h = allowed(preflight(
            &p,
            Some("https://app.example.com"),
            Some("PROPFIND"),
            Some("x-a, x-b"),
        ));
        assert_eq!(header(&h, ALLOW_METHODS), Some("PROPFIND"));
        assert_eq!(header(&h, ALLOW_HEADERS), Some("x-a, x-b"));
        denied(preflight(
            &p,
            Some("https://app.example.com"),
            Some("GET"),
            Some("authorization"),
        ));
        p.allowed_headers.push("authorization".into());
        allowed(preflight(
            &p,
            Some("https://app.example.com"),
            Some("GET"),
            Some("authorization"),
        ));
        // No headers asked for: no Allow-Headers line.
        let h = allowed(preflight(
            &p,
            Some("https://app.example.com"),
            Some("GET"),
            None,
        ));
        assert_eq!(header(&h, ALLOW_HEADERS), None);
    }

    #[test]
    fn validate_names_the_field() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "allowed_origins"),
            (&["https://app.example.com/"], "allowed_origins[0]"),
            (
                &["https://ok.example", "app.example.com"],
                "allowed_origins[1]",
            ),
            (&["ftp://app.example.com"], "allowed_origins[0]"),
            (&["https://*.com"], "allowed_origins[0]"),
            (&["https://a.*.example.com"], "allowed_origins[0]"),
            (&["https://*.*.example.com"], "allowed_origins[0]"),
            (&["https://*example.com"], "allowed_origins[0]"),
            (&["https://app.example.com:443"], "allowed_origins[0]"),
            (&["http://app.example.com:80"], "allowed_origins[0]"),
            (&["https://app.example.com:0"], "allowed_origins[0]"),
            (&["https://app.example.com:99999"], "allowed_origins[0]"),
            (&["https://app.example.com:+1"], "allowed_origins[0]"),
            (&["null"], "allowed_origins[0]"),
            (&["https://"], "allowed_origins[0]"),
            (&["https://[::1"], "allowed_origins[0]"),
            (&["https://*.[::1]"], "allowed_origins[0]"),
        ];
        for (origins, field) in cases {
            let mut p = policy(origins);
            p.allow_credentials = false;
            assert_eq!(p.validate().unwrap_err().field, *field, "{origins:?}");
        }
        for ok in [
            "https://app.example.com",
            "http://localhost:3000",
            "https://*.example.com",
            "https://*.example.com:8443",
            "https://[::1]:8443",
            "http://127.0.0.1:8080",
        ] {
            policy(&[ok])
                .validate()
                .unwrap_or_else(|e| panic!("{ok}: {e:?}"));
        }
        let mut p = policy(&["https://app.example.com"]);
        p.allowed_methods.push("BAD METHOD".into());
        assert_eq!(p.validate().unwrap_err().field, "allowed_methods[3]");
        let mut p = policy(&["https://app.example.com"]);
        p.allowed_headers.push("x:y".into());
        assert_eq!(p.validate().unwrap_err().field, "allowed_headers[2]");
        let mut p = policy(&["https://app.example.com"]);
        p.max_age_s = 86_401;
        assert_eq!(p.validate().unwrap_err().field, "max_age_s");
    }

    #[test]
    fn ipv6_exact_origin_matches() {
        let p = policy(&["https://[::1]:8443"]);
        assert!(header(&decorate(&p, Some("https://[::1]:8443")), ALLOW_ORIGIN).is_some());
        assert!(header(&decorate(&p, Some("https://[::2]:8443")), ALLOW_ORIGIN).is_none());
    }

    use crate::test_rng::Rng;

    impl Rng {
        fn string(&mut self) -> String {
            const PIECES: &[&str] = &[
                "https",
                "http",
                "://",
                "*",
                ".",
                "*.",
                "example",
                "com",
                ":",
                "443",
                "8443",
                "[",
                "]",
                "::1",
                "/",
                "-",
                "a",
                "é",
                "\u{0}",
                " ",
                ",",
                "\t",
                "null",
                "GET",
                "authorization",
                "x-a",
                "ü.",
                "\r\n",
            ];
            let n = (self.next() % 8) as usize;
            (0..n)
                .map(|_| PIECES[(self.next() % PIECES.len() as u64) as usize])
                .collect()
        }
    }

    #[test]
    fn random_inputs_never_panic() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut validated = 0;
        for _ in 0..20_000 {
            let pick = |rng: &mut Rng, fixed: &[&str]| -> String {
                match (rng.next() % (fixed.len() as u64 + 1)) as usize {
                    k if k < fixed.len() => fixed[k].to_owned(),
                    _ => rng.string(),
                }
            };
            let p = CorsPolicy {
                allowed_origins: vec![
                    pick(
                        &mut rng,
                        &["https://*.example.com", "https://a.example.com", "*"],
                    ),
                    pick(&mut rng, &["http://[::1]:8443", "https://a.test:8443"]),
                ],
                allowed_methods: vec![pick(&mut rng, &["GET", "PUT", "*"])],
                allowed_headers: vec![pick(&mut rng, &["x-a", "authorization", "*"])],
                expose_headers: vec![pick(&mut rng, &["x-request-id", "*"])],
                allow_credentials: rng.next().is_multiple_of(2),
                max_age_s: (rng.next() % 100_000) as u32,
            };
            let valid = p.validate().is_ok();
            let echoes = p.allowed_headers.iter().any(|h| h == "*");
            validated += usize::from(valid);
            let origin = rng.string();
            let method = rng.string();
            let headers = rng.string();
            let pf = preflight(&p, Some(&origin), Some(&method), Some(&headers));
            let d = decorate(&p, Some(&origin));
            assert!(header(&d, VARY).is_some());
            // Whatever is answered is a valid header value (no CR/LF/NUL reflected).
            let all = match pf {
                Preflight::Allowed(h) => h.into_iter().chain(d).collect::<Vec<_>>(),
                _ => d,
            };
            for (name, v) in all {
                // Under a valid policy every value is a clean header value; under any policy
                // nothing the client sent is reflected with control bytes.
                if valid || name == ALLOW_ORIGIN || (name == ALLOW_HEADERS && echoes) {
                    assert!(!v.bytes().any(|b| b < 0x20 && b != b'\t'), "{name}: {v:?}");
                }
                if p.allow_credentials && name == ALLOW_ORIGIN {
                    assert_ne!(v, "*");
                }
            }
        }
        assert!(
            validated > 2_000,
            "too few valid policies exercised: {validated}"
        );
    }

    /// The origin's own CORS answer never leaves the edge on a route whose CORS the edge
    /// owns: its `Access-Control-*` fields go, and so do the `Vary` members CORS put there.
    #[test]
    fn origin_cors_headers_are_recognised_and_its_vary_is_cleaned() {
        for name in [
            "Access-Control-Allow-Origin",
            "access-control-allow-credentials",
            "ACCESS-CONTROL-EXPOSE-HEADERS",
            "access-control-max-age",
            "Access-Control-Allow-Private-Network",
        ] {
            assert!(is_cors_response_header(name), "{name}");
        }
        for name in [
            "vary",
            "content-type",
            "access-control",
            "x-access-control-x",
            "",
        ] {
            assert!(!is_cors_response_header(name), "{name}");
        }
        // tower-http's actual-response Vary, on its own line and beside the origin's own.
        assert_eq!(
            origin_vary_without_cors([
                "origin, access-control-request-method, access-control-request-headers"
            ]),
            None
        );
        assert_eq!(
            origin_vary_without_cors(["Fastgate-Flags", "Origin", "accept-encoding, ORIGIN"]),
            Some("Fastgate-Flags, accept-encoding".into())
        );
        assert_eq!(origin_vary_without_cors(["*", "origin"]), Some("*".into()));
        assert_eq!(
            origin_vary_without_cors(["Accept, accept, , "]),
            Some("Accept".into())
        );
        assert_eq!(origin_vary_without_cors(Vec::<&str>::new()), None);
    }
}
