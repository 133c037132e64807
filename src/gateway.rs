//! The request lifecycle as named phases over one context, in the spirit of Pingora's
//! `ProxyHttp`: `classify` → `normalize` → `route` → `rewrite` → `sanitize` → `select`.
//! Later phases (cors, auth, limit, cache) slot in between without changing the adapter.
//!
//! Nothing here touches the platform: the adapter (`main.rs`) gathers [`RequestFacts`],
//! asks for a [`Plan`], and carries it out.

use std::net::IpAddr;

use crate::auth::{self, AuthFailure, KeySource, RouteAuth, Verified};
use crate::cache::{self, CacheMode, CachePolicy, VaryInput};
use crate::config::{Config, Failover};
use crate::cors;
use crate::flags;
use crate::geo::{self, ClientGeo, GeoLevel};
use crate::path;
use crate::problem::{Problem, ProblemKind};
use crate::ratelimit::RateLimitSpec;
use crate::request_id;
use crate::route::{self, NoRoute, RouteInput};
use crate::sanitize::{self, HeaderEdits};

/// What the adapter tells the gateway about an inbound request.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts<'a> {
    pub method: &'a str,
    /// The raw path, as received.
    pub path: &'a str,
    /// The raw query, without `?`.
    pub query: Option<&'a str>,
    /// Inbound headers (name, value); values that are not UTF-8 appear as "".
    pub headers: Vec<(&'a str, &'a str)>,
    pub client_ip: Option<IpAddr>,
    pub tls: bool,
    pub geo: ClientGeo,
}

impl<'a> RequestFacts<'a> {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// Everything the adapter needs to forward a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub route_id: String,
    /// Backends in preference order; the adapter reorders by health (see `failover`).
    pub backends: Vec<String>,
    pub geo_level: GeoLevel,
    pub headers: HeaderEdits,
    /// The path and query to send upstream (after normalisation and rewrites).
    pub path: String,
    pub query: Option<String>,
    pub failover: Failover,
    /// How long one attempt may wait for response headers.
    pub attempt_timeout_ms: u64,
    /// The route's auth requirements, for the authenticate phase.
    pub auth: RouteAuth,
    /// The route's rate limit, for the limit phase.
    pub rate_limit: Option<RateLimitSpec>,
    /// The route's cache policy, for the cache phase.
    pub cache: Option<CachePolicy>,
    /// Surrogate-key templates a successful write through this route purges.
    pub purge: Vec<String>,
}

/// The cache phase's plan for one request of a cached route: may it use the cache, under
/// which key, and which surrogate keys a copy it stores is tagged with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRequest {
    pub key: [u8; 32],
    pub lookup: cache::Lookup,
    pub surrogate_keys: Vec<String>,
}

/// The outcome of the request phases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Forward(Box<Forward>),
    /// A CORS preflight allowed by the route's policy: answer 204 with these headers.
    Preflight(Vec<(&'static str, String)>),
    Redirect {
        status: u16,
        location: String,
    },
    Respond(Problem),
}

/// The per-request context every phase reads and extends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub request_id: String,
    pub route_id: Option<String>,
    pub decision: Decision,
    /// CORS headers for whatever response this request gets (errors included, so a page
    /// can read them), with `Vary: Origin` whenever a policy applies.
    pub cors_headers: Vec<(&'static str, String)>,
}

/// The gateway: a validated config plus the phase logic.
#[derive(Debug, Clone)]
pub struct Gateway {
    config: Config,
}

impl Gateway {
    pub fn new(config: Config) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs the request phases and returns what to do.
    pub fn plan(&self, req: &RequestFacts<'_>) -> Plan {
        let request_id = request_id::resolve(req.header(request_id::HEADER));
        let mut route_id = None;
        let mut cors_headers = Vec::new();
        let decision = self
            .decide(req, &request_id, &mut route_id, &mut cors_headers)
            .unwrap_or_else(Decision::Respond);
        Plan {
            request_id,
            route_id,
            decision,
            cors_headers,
        }
    }

    fn decide(
        &self,
        req: &RequestFacts<'_>,
        request_id: &str,
        route_id: &mut Option<String>,
        cors_headers: &mut Vec<(&'static str, String)>,
    ) -> Result<Decision, Problem> {
        let problem = |kind, detail: String| Problem::new(kind, detail, request_id);
        // normalize
        let path = path::normalize(req.path)
            .map_err(|e| problem(ProblemKind::BadRequest, e.to_string()))?;
        // A CORS preflight is routed as the request it announces, and answered here.
        let origin = req.header("origin");
        let announced = req.header("access-control-request-method");
        let preflight = req.method == "OPTIONS" && origin.is_some() && announced.is_some();
        // route
        let input = RouteInput {
            method: if preflight {
                announced.unwrap_or("OPTIONS")
            } else {
                req.method
            },
            path: &path,
            host: req.header("host"),
            headers: &req.headers,
        };
        let route = route::match_route(&self.config.routes, &input).map_err(|e| match e {
            NoRoute::NotFound => {
                problem(ProblemKind::NotFound, "no route matches this path".into())
            }
            NoRoute::MethodNotAllowed => problem(
                ProblemKind::MethodNotAllowed,
                format!("{} is not allowed on this path", req.method),
            ),
        })?;
        *route_id = Some(route.id.clone());
        // cors
        let policy = route
            .cors
            .as_ref()
            .and_then(|name| self.config.cors.get(name));
        if preflight {
            let denied = |reason: String| problem(ProblemKind::CorsDenied, reason);
            let Some(policy) = policy else {
                return Err(denied(
                    "this route does not allow cross-origin requests".into(),
                ));
            };
            return match cors::preflight(
                policy,
                origin,
                announced,
                req.header("access-control-request-headers"),
            ) {
                cors::Preflight::Allowed(headers) => Ok(Decision::Preflight(headers)),
                cors::Preflight::Denied(reason) => {
                    *cors_headers = cors::decorate(policy, None);
                    Err(denied(reason))
                }
                cors::Preflight::NotCors => Err(denied("not a CORS preflight".into())),
            };
        }
        if let Some(policy) = policy {
            *cors_headers = cors::decorate(policy, origin);
        }
        // rewrite
        let (path, query) = match &route.rewrite {
            Some(rw) => rw
                .apply(&path, req.query)
                .map_err(|e| problem(ProblemKind::BadRequest, e.to_string()))?,
            None => (path, req.query.map(str::to_owned)),
        };
        if let Some(redirect) = &route.redirect {
            let location = match &query {
                Some(q) => format!("{path}?{q}"),
                None => path,
            };
            return Ok(Decision::Redirect {
                status: redirect.status,
                location,
            });
        }
        // sanitize
        let mut headers = sanitize::sanitize(
            req.headers.iter().map(|(n, _)| *n),
            req.header("connection"),
            &sanitize::Connection {
                client_ip: req.client_ip,
                tls: req.tls,
                host: req.header("host"),
            },
        );
        headers
            .set
            .push((request_id::HEADER, request_id.to_owned()));
        // select backend
        let (backends, geo_level) = match &route.backends {
            Some(list) => (list.as_slice(), GeoLevel::Route),
            None => geo::select_backends(&self.config.geo, &req.geo),
        };
        Ok(Decision::Forward(Box::new(Forward {
            route_id: route.id.clone(),
            backends: backends.to_vec(),
            geo_level,
            headers,
            path,
            query,
            failover: self.config.failover.clone(),
            attempt_timeout_ms: route
                .timeout_ms
                .unwrap_or(self.config.failover.attempt_timeout_ms),
            auth: route.auth.clone(),
            rate_limit: route.rate_limit.clone(),
            cache: route.cache.clone(),
            purge: route.purge.clone(),
        })))
    }

    /// The cache phase, before the lookup: `None` when the route is not cached. Runs after
    /// authentication and flags, because a `per_user` key needs the verified subject and a
    /// `flags` vary input needs this caller's flags. `header` reads the inbound request.
    pub fn cache_request<'h>(
        &self,
        forward: &Forward,
        method: &str,
        header: impl Fn(&str) -> Option<&'h str>,
        subject: Option<&str>,
        flags: &str,
    ) -> Option<CacheRequest> {
        let policy = forward.cache.as_ref()?;
        let has_authorization = match policy.mode {
            CacheMode::PerUser => subject.is_some(),
            CacheMode::Public => subject.is_some() || header("authorization").is_some(),
        };
        let lookup = cache::request_cacheability(
            method,
            has_authorization,
            policy.mode,
            header("cache-control"),
        );
        let vary: Vec<(&str, Option<&str>)> = policy
            .vary
            .iter()
            .map(|input| match input {
                VaryInput::Flags => ("flags", Some(flags)),
                VaryInput::Header(name) => (name.as_str(), header(name)),
            })
            .collect();
        let partition = match policy.mode {
            CacheMode::PerUser => subject,
            CacheMode::Public => None,
        };
        let key = cache::cache_key(
            method,
            &forward.path,
            forward.query.as_deref(),
            &vary,
            partition,
            &self.config.cache,
        );
        Some(CacheRequest {
            key,
            lookup,
            surrogate_keys: cache::surrogate_keys(&policy.surrogate_keys, subject),
        })
    }

    /// The surrogate keys a write purges once it has succeeded: the route's `purge`
    /// templates for a 2xx answer to POST, PUT, PATCH or DELETE; nothing otherwise.
    pub fn purge_keys(
        &self,
        templates: &[String],
        method: &str,
        status: u16,
        subject: Option<&str>,
    ) -> Vec<String> {
        let write = matches!(method, "POST" | "PUT" | "PATCH" | "DELETE");
        if !write || !(200..300).contains(&status) {
            return Vec::new();
        }
        cache::surrogate_keys(templates, subject)
    }

    /// The `Fastgate-Flags` value for this caller: flags are evaluated after authentication,
    /// so percentage rollouts hash the verified subject (or the client IP when anonymous).
    pub fn flags(&self, subject: Option<&str>, ip: Option<IpAddr>, geo: &ClientGeo) -> String {
        flags::evaluate(
            &self.config.flags,
            subject,
            ip,
            geo.country.as_deref(),
            geo.continent.as_deref(),
        )
    }

    /// The authenticate phase for a forwarded request: reads the token the route's policy
    /// asks for and verifies it with keys from `keys`.
    pub fn authenticate(
        &self,
        forward: &Forward,
        authorization: Option<&str>,
        cookie: Option<&str>,
        keys: &mut dyn KeySource,
        now: u64,
    ) -> Result<Option<Verified>, AuthFailure> {
        let auth = &self.config.auth;
        let token = auth::extract_token(authorization, cookie, auth.cookie.as_deref());
        auth::authenticate(&forward.auth, auth, token, keys, now)
    }
}

/// The answer when the edge itself is broken (never the client's fault).
pub fn internal_error(request_id: &str) -> Problem {
    Problem::new(
        ProblemKind::Internal,
        "the edge configuration failed to load",
        request_id,
    )
}

/// The problem answer for a refused token, with its `WWW-Authenticate` value.
pub fn auth_problem(failure: &AuthFailure, request_id: &str) -> (Problem, Option<String>) {
    let kind = match failure.status() {
        401 => ProblemKind::Unauthorized,
        403 => ProblemKind::Forbidden,
        _ => ProblemKind::Unavailable,
    };
    (
        Problem::new(kind, failure.detail(), request_id),
        failure.www_authenticate(),
    )
}

/// The edge cannot sign for the origin (no identity key in the Secret Store): fail closed.
pub fn identity_unavailable(request_id: &str) -> Problem {
    Problem::new(
        ProblemKind::Unavailable,
        "the edge's identity signing key is unavailable",
        request_id,
    )
}

/// The 429 answer when a route's rate limit refuses the request.
pub fn rate_limited(request_id: &str, retry_after_s: u32) -> Problem {
    Problem::new(
        ProblemKind::TooManyRequests,
        format!("rate limit exceeded; retry after {retry_after_s} s"),
        request_id,
    )
}

/// Builds the 502 answer when every candidate backend failed.
pub fn bad_gateway(request_id: &str, tried: &[String]) -> Problem {
    Problem::new(
        ProblemKind::BadGateway,
        format!("no origin answered (tried {})", tried.join(", ")),
        request_id,
    )
}

/// Builds the 503 answer for a read of a cached route when no origin answered and the
/// cache holds no copy it may serve: the resource is unavailable for now (`Retry-After`),
/// which is what Fastly answers for a cached object whose backend is down.
pub fn origin_unavailable(request_id: &str) -> Problem {
    Problem::new(
        ProblemKind::Unavailable,
        "no origin answered and the edge cache has no copy to serve",
        request_id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(
        method: &'a str,
        path: &'a str,
        country: &str,
        continent: &str,
    ) -> RequestFacts<'a> {
        RequestFacts {
            method,
            path,
            headers: vec![("X-Forwarded-For", "6.6.6.6"), ("Accept", "*/*")],
            client_ip: Some("127.0.0.2".parse().unwrap()),
            geo: ClientGeo {
                country: Some(country.into()),
                continent: Some(continent.into()),
            },
            ..Default::default()
        }
    }

    fn forward(plan: Plan) -> Forward {
        match plan.decision {
            Decision::Forward(f) => *f,
            other => panic!("expected forward, got {other:?}"),
        }
    }

    #[test]
    fn forwards_to_the_geo_choice_with_sanitized_headers() {
        let gw = Gateway::new(Config::embedded().unwrap());
        let plan = gw.plan(&facts("GET", "/health", "DE", "EU"));
        let id = plan.request_id.clone();
        let f = forward(plan);
        assert_eq!(f.route_id, "health");
        assert_eq!(f.backends[0], "origin_eu");
        assert!(f.headers.remove.contains(&"x-forwarded-for".to_string()));
        assert!(f
            .headers
            .set
            .contains(&("x-forwarded-for", "127.0.0.2".to_string())));
        assert!(f.headers.set.contains(&("x-request-id", id)));
    }

    #[test]
    fn v1_paths_are_rewritten_to_api() {
        let gw = Gateway::new(Config::embedded().unwrap());
        let mut req = facts("GET", "/v1/user/profile", "US", "NA");
        req.query = Some("a=1");
        let f = forward(gw.plan(&req));
        assert_eq!(
            (f.path.as_str(), f.query.as_deref()),
            ("/api/user/profile", Some("a=1"))
        );
    }

    #[test]
    fn traversal_is_a_400_and_unknown_route_a_404_with_the_request_id() {
        let gw = Gateway::new(Config::embedded().unwrap());
        let plan = gw.plan(&facts("GET", "/api/%2e%2e/etc/passwd", "US", "NA"));
        assert!(matches!(plan.decision, Decision::Respond(ref p) if p.status == 400));
        let mut req = facts("GET", "/nope", "US", "NA");
        req.headers.push(("X-Request-Id", "req-1"));
        let plan = gw.plan(&req);
        assert_eq!(plan.request_id, "req-1");
        match plan.decision {
            Decision::Respond(p) => {
                assert_eq!(p.status, 404);
                assert!(p.instance.ends_with("req-1"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn trailing_slash_redirects_keep_the_query() {
        let gw = Gateway::new(Config::embedded().unwrap());
        let mut req = facts("GET", "/api/summaries/", "US", "NA");
        req.query = Some("page=2");
        let plan = gw.plan(&req);
        assert_eq!(
            plan.decision,
            Decision::Redirect {
                status: 308,
                location: "/api/summaries?page=2".into()
            }
        );
    }

    #[test]
    fn cache_keys_partition_per_user_and_vary_on_flags() {
        let gw = Gateway::new(Config::embedded().unwrap());
        let no_header = |_: &str| None;
        let profile = forward(gw.plan(&facts("GET", "/api/user/profile", "US", "NA")));
        let a = gw
            .cache_request(&profile, "GET", no_header, Some("a@example.com"), "")
            .unwrap();
        let b = gw
            .cache_request(&profile, "GET", no_header, Some("b@example.com"), "")
            .unwrap();
        assert_ne!(a.key, b.key, "per-user entries never share a key");
        assert!(matches!(a.lookup, cache::Lookup::Use { .. }));
        assert_eq!(
            a.surrogate_keys,
            vec![format!("user:{}", cache::subject_tag("a@example.com"))]
        );
        let anonymous = gw
            .cache_request(&profile, "GET", no_header, None, "")
            .unwrap();
        assert!(matches!(anonymous.lookup, cache::Lookup::Forward { .. }));

        let by_id = forward(gw.plan(&facts(
            "GET",
            "/api/user/7c9e6679-7425-40de-944b-e07fc1f90ae7",
            "US",
            "NA",
        )));
        let bearer = |n: &str| (n == "authorization").then_some("Bearer x");
        let one = gw
            .cache_request(&by_id, "GET", bearer, Some("a@example.com"), "new_schema=0")
            .unwrap();
        let other_reader = gw
            .cache_request(&by_id, "GET", bearer, Some("b@example.com"), "new_schema=0")
            .unwrap();
        let other_flags = gw
            .cache_request(&by_id, "GET", bearer, Some("a@example.com"), "new_schema=1")
            .unwrap();
        assert_eq!(one.key, other_reader.key, "a public route shares one copy");
        assert_ne!(one.key, other_flags.key, "…per flag value");
        assert_eq!(
            one.lookup,
            cache::Lookup::Use {
                needs_shareable: true
            }
        );
        let health = forward(gw.plan(&facts("GET", "/health", "US", "NA")));
        assert!(gw
            .cache_request(&health, "GET", no_header, None, "")
            .is_none());
    }

    #[test]
    fn only_successful_writes_purge() {
        let gw = Gateway::new(Config::embedded().unwrap());
        let uploads = forward(gw.plan(&facts("POST", "/api/uploads", "US", "NA")));
        let tag = cache::subject_tag("a@example.com");
        assert_eq!(
            gw.purge_keys(&uploads.purge, "POST", 202, Some("a@example.com")),
            vec![format!("summaries:{tag}")]
        );
        assert!(gw
            .purge_keys(&uploads.purge, "POST", 422, Some("a@example.com"))
            .is_empty());
        assert!(gw
            .purge_keys(&uploads.purge, "GET", 200, Some("a@example.com"))
            .is_empty());
        let v1 = forward(gw.plan(&facts("POST", "/v1/uploads", "US", "NA")));
        assert_eq!(v1.path, "/api/uploads");
        assert_eq!(v1.purge, uploads.purge);
    }
}
