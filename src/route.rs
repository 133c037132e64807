//! The route table: which configured route a request belongs to. First match wins, so
//! specific routes go before broad ones, as in Envoy's route lists.
//!
//! A route matches on method(s) and path (exact, prefix, or a template such as
//! `/api/user/{id}`), and optionally on the `Host` and on header values. The table is
//! compiled once at config load; a route that an earlier one fully shadows is a config error.
//!
//! A path some route serves, but not for this method, is a 405 whose `Allow` lists the
//! methods that would have matched (RFC 9110 §15.5.6). Routes list only methods the edge
//! forwards ([`crate::http::method::FORWARDED`]), spelled as RFC 9110 spells them.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::auth::{Policy, RouteAuth};
use crate::cache::{self, CacheMode, CachePolicy};
use crate::config::FieldError;
use crate::http::method;
use crate::ratelimit::RateLimitSpec;
use crate::rewrite::{Redirect, Rewrite, RewriteSpec};

/// How a route matches a path, as written in the config.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PathMatch {
    /// The path equals this exactly.
    Exact(String),
    /// The path starts with this.
    Prefix(String),
    /// Segments match literally, except `{name}`, which matches one non-empty segment.
    Template(String),
    /// A regular expression over the whole normalised path (anchor it yourself).
    Regex(String),
}

/// A route as written in the config.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// Stable identifier used in logs and metrics.
    pub id: String,
    /// Allowed methods; empty means any method the edge forwards.
    #[serde(default)]
    pub methods: Vec<String>,
    pub path: PathMatch,
    /// Only requests whose `Host` (port ignored, case-insensitive) equals this.
    #[serde(default)]
    pub host: Option<String>,
    /// Only requests carrying each of these headers with exactly this value.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Overrides the geo map's backend list for this route, most preferred first.
    #[serde(default)]
    pub backends: Option<Vec<String>>,
    #[serde(default)]
    pub rewrite: Option<RewriteSpec>,
    /// Answer with a redirect to the (rewritten) path instead of forwarding.
    #[serde(default)]
    pub redirect: Option<Redirect>,
    /// How long one attempt may wait for response headers; default `failover.attempt_timeout_ms`.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Who may call it. Absent means `{"policy": "required"}`: closed unless opened.
    #[serde(default)]
    pub auth: RouteAuth,
    /// Name of the CORS policy (in the config's `cors`) this route belongs to.
    #[serde(default)]
    pub cors: Option<String>,
    #[serde(default)]
    pub rate_limit: Option<RateLimitSpec>,
    /// Edge caching of this route's GET/HEAD responses; absent means not cached.
    #[serde(default)]
    pub cache: Option<CachePolicy>,
    /// Surrogate-key templates (`items`, `summaries:{sub}`) purged when a write (POST, PUT,
    /// PATCH, DELETE) through this route succeeds, before its response returns.
    #[serde(default)]
    pub purge: Vec<String>,
    /// The largest request body this route accepts, in bytes (413 above it); absent: the
    /// config's `limits.max_body_bytes`.
    #[serde(default)]
    pub max_body_bytes: Option<u64>,
    /// The origin behind this route honours `Idempotency-Key` (it stores the answer per key
    /// and replays it): only then may the edge retry a keyed POST or PATCH on the next
    /// backend after an ambiguous failure. Off by default, since a key sent to a handler
    /// that ignores it would make that retry a duplicate write.
    #[serde(default)]
    pub idempotency_key: bool,
    /// Answered from the release's front-end files (`crate::release`), never forwarded:
    /// `"static": true`. The path (after any rewrite) is the file's path in the release.
    #[serde(default, rename = "static")]
    pub static_files: bool,
    /// A browser-session endpoint the edge owns (`crate::session`): `"login"` trades the
    /// origin's token (the route's rewrite reaches its login handler) for a sealed session
    /// cookie; `"logout"` ends the session without reaching any origin.
    #[serde(default)]
    pub session: Option<SessionRole>,
}

/// What a session route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionRole {
    Login,
    Logout,
}

/// The most a route may set `max_body_bytes` to: the edge holds a body in memory (to
/// bound it, to digest it for the signature, to resend it on failover).
pub const MAX_BODY_BYTES_CEILING: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param,
}

#[derive(Debug, Clone)]
enum Matcher {
    Exact(String),
    Prefix(String),
    Template(Vec<Segment>),
    Regex(regex_lite::Regex),
}

/// A compiled route.
#[derive(Debug, Clone)]
pub struct Route {
    pub id: String,
    methods: Vec<String>,
    matcher: Matcher,
    host: Option<String>,
    headers: Vec<(String, String)>,
    pub backends: Option<Vec<String>>,
    pub rewrite: Option<Rewrite>,
    pub redirect: Option<Redirect>,
    pub timeout_ms: Option<u64>,
    pub auth: RouteAuth,
    pub cors: Option<String>,
    pub rate_limit: Option<RateLimitSpec>,
    pub cache: Option<CachePolicy>,
    pub purge: Vec<String>,
    /// This route's own body limit, if it sets one (see [`RouteSpec::max_body_bytes`]).
    pub max_body_bytes: Option<u64>,
    /// See [`RouteSpec::idempotency_key`].
    pub idempotency_key: bool,
    /// See [`RouteSpec::static_files`].
    pub static_files: bool,
    /// See [`RouteSpec::session`].
    pub session: Option<SessionRole>,
}

/// What routing looks at in a request.
#[derive(Debug, Clone, Copy)]
pub struct RouteInput<'a> {
    pub method: &'a str,
    /// Already normalised (see [`crate::path::normalize`]).
    pub path: &'a str,
    pub host: Option<&'a str>,
    pub headers: &'a [(&'a str, &'a str)],
}

/// Why no route was chosen. A path that exists for other methods is a 405, not a 404.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoRoute {
    NotFound,
    /// The `Allow` value: the methods some route serves this request's path with.
    MethodNotAllowed {
        allow: String,
    },
}

impl RouteSpec {
    /// Validates and compiles the route; the error's field is relative to the route.
    pub fn compile(&self) -> Result<Route, FieldError> {
        if self.id.is_empty() {
            return Err(FieldError::new("id", "must not be empty"));
        }
        for m in &self.methods {
            if !method::is_forwarded(m) {
                return Err(FieldError::new(
                    "methods",
                    format!(
                        "`{m}` is not a method the edge forwards ({})",
                        method::FORWARDED.join(", ")
                    ),
                ));
            }
        }
        if let Some(max) = self.max_body_bytes {
            if max == 0 || max > MAX_BODY_BYTES_CEILING {
                return Err(FieldError::new(
                    "max_body_bytes",
                    format!("must be between 1 and {MAX_BODY_BYTES_CEILING}"),
                ));
            }
        }
        let matcher = compile_matcher(&self.path).map_err(|e| e.under("path"))?;
        let rewrite = self
            .rewrite
            .as_ref()
            .map(RewriteSpec::compile)
            .transpose()
            .map_err(|e| e.under("rewrite"))?;
        if self.timeout_ms == Some(0) {
            return Err(FieldError::new("timeout_ms", "must be positive"));
        }
        if let Some(redirect) = &self.redirect {
            redirect.validate().map_err(|e| e.under("redirect"))?;
        }
        self.check_caching()?;
        self.check_static()?;
        self.check_session()?;
        Ok(Route {
            id: self.id.clone(),
            methods: self.methods.clone(),
            matcher,
            host: self.host.as_ref().map(|h| h.to_ascii_lowercase()),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
            backends: self.backends.clone(),
            rewrite,
            redirect: self.redirect.clone(),
            timeout_ms: self.timeout_ms,
            auth: self.auth.clone(),
            cors: self.cors.clone(),
            rate_limit: self.rate_limit.clone(),
            cache: self.cache.clone(),
            purge: self.purge.clone(),
            max_body_bytes: self.max_body_bytes,
            idempotency_key: self.idempotency_key,
            static_files: self.static_files,
            session: self.session,
        })
    }

    /// A session route takes a `POST` only (a login is a write; a logout must not be
    /// triggerable by a link or a prefetch). That a login is rate-limited like the login it
    /// wraps is the config's coverage check (`validate/coverage.rs`): its rewrite reaches the
    /// origin's login handler, an expensive one.
    fn check_session(&self) -> Result<(), FieldError> {
        if self.session.is_none() {
            return Ok(());
        }
        if self.methods != ["POST"] {
            return Err(FieldError::new(
                "methods",
                "a session route takes [\"POST\"] only",
            ));
        }
        if self.static_files || self.cache.is_some() || self.redirect.is_some() {
            let reason = "a session route is answered by the edge: no static, cache or redirect";
            return Err(FieldError::new("session", reason));
        }
        Ok(())
    }

    /// A static route is answered at the edge from the release: what only makes sense for
    /// a forwarded request (a redirect, backends, edge caching, purges, idempotent
    /// retries) is a contradiction worth refusing, not ignoring.
    fn check_static(&self) -> Result<(), FieldError> {
        if !self.static_files {
            return Ok(());
        }
        let conflicts = [
            ("redirect", self.redirect.is_some()),
            ("backends", self.backends.is_some()),
            ("cache", self.cache.is_some()),
            ("purge", !self.purge.is_empty()),
            ("idempotency_key", self.idempotency_key),
        ];
        match conflicts.iter().find(|(_, set)| *set) {
            Some((field, _)) => Err(FieldError::new(
                "static",
                format!("a static route is answered from the release's files; `{field}` cannot apply to it"),
            )),
            None => Ok(()),
        }
    }

    /// The cache policy and purge templates: a per-user entry or a `{sub}` template needs
    /// a route that verifies a subject.
    fn check_caching(&self) -> Result<(), FieldError> {
        let has_subject = self.auth.policy != Policy::Public;
        if let Some(policy) = &self.cache {
            policy.validate().map_err(|e| e.under("cache"))?;
            if policy.mode == CacheMode::PerUser && !has_subject {
                return Err(FieldError::new(
                    "cache.mode",
                    "`per_user` needs a verified subject: the route's auth policy must be \
                     `required` or `optional`",
                ));
            }
        }
        cache::validate_templates(&self.purge, has_subject).map_err(|e| e.under("purge"))
    }
}

/// The path matcher; the error's field is relative to `path`.
fn compile_matcher(path: &PathMatch) -> Result<Matcher, FieldError> {
    Ok(match path {
        PathMatch::Exact(p) | PathMatch::Prefix(p) | PathMatch::Template(p)
            if !p.starts_with('/') =>
        {
            return Err(FieldError::new("", format!("`{p}` must start with `/`")));
        }
        PathMatch::Exact(p) => Matcher::Exact(p.clone()),
        PathMatch::Prefix(p) => Matcher::Prefix(p.clone()),
        PathMatch::Template(t) => {
            Matcher::Template(compile_template(t).map_err(|r| FieldError::new("template", r))?)
        }
        PathMatch::Regex(r) => Matcher::Regex(
            regex_lite::Regex::new(r).map_err(|e| FieldError::new("regex", e.to_string()))?,
        ),
    })
}

fn compile_template(t: &str) -> Result<Vec<Segment>, String> {
    let mut names = Vec::new();
    t.split('/')
        .skip(1)
        .map(|seg| {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(format!("`{{{name}}}` is not a valid parameter name"));
                }
                if names.contains(&name) {
                    return Err(format!("parameter `{name}` appears twice"));
                }
                names.push(name);
                Ok(Segment::Param)
            } else if seg.contains(['{', '}']) {
                Err(format!("segment `{seg}` mixes text and a parameter"))
            } else {
                Ok(Segment::Literal(seg.to_owned()))
            }
        })
        .collect()
}

impl Route {
    pub(crate) fn path_matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Exact(p) => path == p,
            Matcher::Prefix(p) => path.starts_with(p.as_str()),
            Matcher::Regex(re) => re.is_match(path),
            Matcher::Template(segments) => {
                let mut parts = path.split('/').skip(1);
                segments.iter().all(|seg| match (seg, parts.next()) {
                    (Segment::Literal(l), Some(p)) => l == p,
                    (Segment::Param, Some(p)) => !p.is_empty(),
                    (_, None) => false,
                }) && parts.next().is_none()
            }
        }
    }

    pub(crate) fn method_matches(&self, method: &str) -> bool {
        self.methods.is_empty() || self.methods.iter().any(|m| m == method)
    }

    fn predicates_match(&self, input: &RouteInput<'_>) -> bool {
        let host_ok = self.host.as_ref().is_none_or(|want| {
            input
                .host
                .map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name))
                .is_some_and(|h| h.eq_ignore_ascii_case(want))
        });
        host_ok
            && self.headers.iter().all(|(name, want)| {
                input
                    .headers
                    .iter()
                    .any(|(n, v)| n.eq_ignore_ascii_case(name) && v == want)
            })
    }

    fn is_unconditional(&self) -> bool {
        self.host.is_none() && self.headers.is_empty()
    }

    /// True when every request `later` could match is matched by `self` first.
    fn shadows(&self, later: &Route) -> bool {
        let methods_cover = self.methods.is_empty()
            || (!later.methods.is_empty()
                && later.methods.iter().all(|m| self.methods.contains(m)));
        let path_covers = match (&self.matcher, &later.matcher) {
            (Matcher::Exact(a), Matcher::Exact(b)) => a == b,
            (Matcher::Prefix(a), Matcher::Exact(b) | Matcher::Prefix(b)) => {
                b.starts_with(a.as_str())
            }
            (Matcher::Prefix(a), Matcher::Template(segs)) => {
                literal_prefix(segs).starts_with(a.as_str())
            }
            (Matcher::Template(_), Matcher::Exact(b)) => self.path_matches(b),
            (Matcher::Template(a), Matcher::Template(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|(x, y)| matches!(x, Segment::Param) || x == y)
            }
            // A regex route never counts as shadowing or shadowed: undecidable in general.
            _ => false,
        };
        self.is_unconditional() && methods_cover && path_covers
    }
}

/// The literal text a template's paths always start with (up to the first parameter).
fn literal_prefix(segments: &[Segment]) -> String {
    let mut out = String::new();
    for seg in segments {
        match seg {
            Segment::Literal(l) => {
                out.push('/');
                out.push_str(l);
            }
            Segment::Param => {
                out.push('/');
                break;
            }
        }
    }
    out
}

/// Compiles every route and rejects ones an earlier route makes unreachable.
pub fn compile_table(specs: &[RouteSpec]) -> Result<Vec<Route>, FieldError> {
    let mut table: Vec<Route> = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let at = format!("routes[{i}]");
        let route = spec.compile().map_err(|e| e.under(&at))?;
        if let Some((j, earlier)) = table.iter().enumerate().find(|(_, r)| r.id == route.id) {
            return Err(FieldError::new(
                "id",
                format!("duplicate of routes[{j}] (`{}`)", earlier.id),
            )
            .under(&at));
        }
        if let Some((j, earlier)) = table.iter().enumerate().find(|(_, r)| r.shadows(&route)) {
            return Err(FieldError::new(
                at,
                format!(
                    "can never match: routes[{j}] (`{}`) matches all its requests first",
                    earlier.id
                ),
            ));
        }
        table.push(route);
    }
    Ok(table)
}

/// Returns the first route matching the request.
pub fn match_route<'a>(routes: &'a [Route], input: &RouteInput<'_>) -> Result<&'a Route, NoRoute> {
    let mut path_seen = false;
    for route in routes {
        if route.path_matches(input.path) && route.predicates_match(input) {
            if route.method_matches(input.method) {
                return Ok(route);
            }
            // A static catch-all (`/` for GET and HEAD) does not make every unknown path a
            // 405: whether a file is there is only known once the release is read.
            path_seen |= !route.static_files;
        }
    }
    if !path_seen {
        return Err(NoRoute::NotFound);
    }
    // Only on the refusal path: which methods would have found a route for this request.
    let serving: Vec<&Route> = routes
        .iter()
        .filter(|r| r.path_matches(input.path) && r.predicates_match(input))
        .collect();
    let allow = method::allow_value(|m| serving.iter().any(|r| r.method_matches(m)));
    Err(NoRoute::MethodNotAllowed { allow })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(json: &str) -> Result<Vec<Route>, FieldError> {
        let specs: Vec<RouteSpec> = serde_json::from_str(json).unwrap();
        compile_table(&specs)
    }

    fn id(routes: &[Route], method: &str, path: &str) -> Result<String, NoRoute> {
        id_with(routes, method, path, None, &[])
    }

    fn id_with(
        routes: &[Route],
        method: &str,
        path: &str,
        host: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<String, NoRoute> {
        match_route(
            routes,
            &RouteInput {
                method,
                path,
                host,
                headers,
            },
        )
        .map(|r| r.id.clone())
    }

    #[test]
    fn first_match_wins_methods_filter_and_templates_bind_one_segment() {
        let t = table(
            r#"[{"id":"health","methods":["GET"],"path":{"exact":"/health"}},
                {"id":"profile","methods":["GET"],"path":{"exact":"/api/user/profile"}},
                {"id":"user","methods":["GET"],"path":{"template":"/api/user/{id}"}},
                {"id":"api","path":{"prefix":"/api/"}}]"#,
        )
        .unwrap();
        assert_eq!(id(&t, "GET", "/health").unwrap(), "health");
        assert_eq!(
            id(&t, "POST", "/health"),
            Err(NoRoute::MethodNotAllowed {
                allow: "GET".into()
            })
        );
        assert_eq!(id(&t, "GET", "/healthz"), Err(NoRoute::NotFound));
        assert_eq!(id(&t, "GET", "/api/user/profile").unwrap(), "profile");
        assert_eq!(id(&t, "GET", "/api/user/42").unwrap(), "user");
        assert_eq!(id(&t, "GET", "/api/user/42/x").unwrap(), "api");
        assert_eq!(id(&t, "GET", "/api/user/").unwrap(), "api");
        assert_eq!(id(&t, "DELETE", "/api/user/42").unwrap(), "api");
    }

    #[test]
    fn keyed_write_retries_are_an_opt_in_per_route() {
        let t = table(
            r#"[{"id":"process","path":{"exact":"/api/process"},"idempotency_key":true},
                {"id":"api","path":{"prefix":"/api/"}}]"#,
        )
        .unwrap();
        assert!(t[0].idempotency_key);
        assert!(
            !t[1].idempotency_key,
            "off unless the route says its origin honours it"
        );
    }

    #[test]
    fn host_and_header_predicates() {
        let t = table(
            r#"[{"id":"beta","path":{"prefix":"/"},"headers":{"X-Beta":"1"}},
                {"id":"admin","path":{"prefix":"/"},"host":"admin.example.com"},
                {"id":"rest","path":{"prefix":"/"}}]"#,
        )
        .unwrap();
        assert_eq!(
            id_with(&t, "GET", "/x", None, &[("x-beta", "1")]).unwrap(),
            "beta"
        );
        assert_eq!(
            id_with(&t, "GET", "/x", None, &[("x-beta", "2")]).unwrap(),
            "rest"
        );
        assert_eq!(
            id_with(&t, "GET", "/x", Some("Admin.Example.com:443"), &[]).unwrap(),
            "admin"
        );
        assert_eq!(
            id_with(&t, "GET", "/x", Some("www.example.com"), &[]).unwrap(),
            "rest"
        );
    }

    #[test]
    fn unreachable_routes_are_config_errors() {
        let e =
            table(r#"[{"id":"a","path":{"prefix":"/api/"}},{"id":"b","path":{"exact":"/api/x"}}]"#)
                .unwrap_err();
        assert_eq!(e.field, "routes[1]");
        let e = table(r#"[{"id":"a","path":{"template":"/u/{id}"}},{"id":"b","methods":["GET"],"path":{"exact":"/u/7"}}]"#).unwrap_err();
        assert_eq!(e.field, "routes[1]");
        let e = table(
            r#"[{"id":"a","path":{"prefix":"/u/"}},{"id":"b","path":{"template":"/u/{id}"}}]"#,
        )
        .unwrap_err();
        assert_eq!(e.field, "routes[1]");
        // Narrower methods or a predicate on the earlier route leave room: fine.
        table(r#"[{"id":"a","methods":["GET"],"path":{"prefix":"/api/"}},{"id":"b","path":{"exact":"/api/x"}}]"#).unwrap();
        table(r#"[{"id":"a","host":"x","path":{"prefix":"/api/"}},{"id":"b","path":{"exact":"/api/x"}}]"#).unwrap();
        let e = table(r#"[{"id":"a","path":{"exact":"/a"}},{"id":"a","path":{"exact":"/b"}}]"#)
            .unwrap_err();
        assert_eq!(e.field, "routes[1].id");
    }

    #[test]
    fn bad_fields_are_named() {
        let e = table(r#"[{"id":"a","path":{"template":"/u/{}"}}]"#).unwrap_err();
        assert_eq!(e.field, "routes[0].path.template");
        let e = table(r#"[{"id":"a","path":{"template":"/u/x{id}"}}]"#).unwrap_err();
        assert_eq!(e.field, "routes[0].path.template");
        let e = table(r#"[{"id":"a","path":{"regex":"(["}}]"#).unwrap_err();
        assert_eq!(e.field, "routes[0].path.regex");
        let e = table(r#"[{"id":"a","path":{"prefix":"api"}}]"#).unwrap_err();
        assert_eq!(e.field, "routes[0].path");
        let e = table(r#"[{"id":"a","methods":["get"],"path":{"prefix":"/"}}]"#).unwrap_err();
        assert_eq!(e.field, "routes[0].methods");
        for m in ["TRACE", "CONNECT", "PROPFIND", ""] {
            let json = format!(r#"[{{"id":"a","methods":["{m}"],"path":{{"prefix":"/"}}}}]"#);
            let e = table(&json).unwrap_err();
            assert_eq!(e.field, "routes[0].methods", "{m}");
        }
        for bad in ["0", "16777217"] {
            let json = format!(r#"[{{"id":"a","path":{{"prefix":"/"}},"max_body_bytes":{bad}}}]"#);
            let e = table(&json).unwrap_err();
            assert_eq!(e.field, "routes[0].max_body_bytes", "{bad}");
        }
        let ok = table(r#"[{"id":"a","path":{"prefix":"/"},"max_body_bytes":10}]"#).unwrap();
        assert_eq!(ok[0].max_body_bytes, Some(10));
    }

    #[test]
    fn a_405_allows_every_method_some_route_serves_the_path_with() {
        let t = table(
            r#"[{"id":"read","methods":["HEAD","GET"],"path":{"exact":"/r"}},
                {"id":"write","methods":["DELETE","POST"],"path":{"prefix":"/r"}},
                {"id":"beta","methods":["PUT"],"path":{"exact":"/r"},"headers":{"x-beta":"1"}},
                {"id":"other","methods":["PATCH"],"path":{"exact":"/x"}}]"#,
        )
        .unwrap();
        let allow = |headers: &[(&str, &str)]| match id_with(&t, "PATCH", "/r", None, headers) {
            Err(NoRoute::MethodNotAllowed { allow }) => allow,
            other => panic!("expected a 405, got {other:?}"),
        };
        assert_eq!(allow(&[]), "GET, HEAD, POST, DELETE");
        assert_eq!(allow(&[("X-Beta", "1")]), "GET, HEAD, POST, PUT, DELETE");
        assert_eq!(id(&t, "GET", "/nope"), Err(NoRoute::NotFound));
    }

    #[test]
    fn cache_and_purge_fields_are_validated_naming_the_field() {
        let err = table(
            r#"[{"id": "p", "path": {"exact": "/p"}, "auth": {"policy": "public"},
                 "cache": {"mode": "per_user"}}]"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "routes[0].cache.mode", "{err:?}");
        let err = table(
            r#"[{"id": "p", "path": {"exact": "/p"}, "auth": {"policy": "public"},
                 "purge": ["items", "user:{sub}"]}]"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "routes[0].purge[1]", "{err:?}");
        let err = table(
            r#"[{"id": "p", "path": {"exact": "/p"},
                 "cache": {"mode": "public", "stale_if_error_s": 99999999}}]"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "routes[0].cache.stale_if_error_s", "{err:?}");
        let ok = table(
            r#"[{"id": "p", "path": {"exact": "/p"},
                 "cache": {"mode": "per_user", "surrogate_keys": ["user:{sub}"]},
                 "purge": ["user:{sub}"]}]"#,
        )
        .unwrap();
        assert_eq!(ok[0].purge, vec!["user:{sub}".to_owned()]);
    }
}
