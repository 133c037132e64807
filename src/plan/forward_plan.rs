//! The plan for a request that goes on towards the origin, and the library halves of the
//! phases the adapter runs with it: authenticate, flags, cache request, purge after write.
//! They borrow the route from the config instead of copying its policies per request.

use std::net::IpAddr;

use crate::auth::{self, AuthFailure, KeySource, Verified};
use crate::cache::{self, CacheMode, VaryInput};
use crate::config::Failover;
use crate::flags;
use crate::geo::{ClientGeo, GeoLevel};
use crate::route::{self, Route, RouteInput};
use crate::sanitize::HeaderEdits;

use super::Gateway;

/// Everything the adapter needs to forward a request.
#[derive(Debug, Clone)]
pub struct ForwardPlan<'g> {
    /// The matched route, with its auth, rate-limit, cache and purge policies.
    pub route: &'g Route,
    /// Backends in preference order; the adapter reorders by health (see `failover`).
    pub backends: &'g [String],
    pub geo_level: GeoLevel,
    pub headers: HeaderEdits,
    /// The path and query to send upstream (after normalisation and rewrites).
    pub path: String,
    pub query: Option<String>,
    pub failover: &'g Failover,
    /// How long one attempt may wait for response headers.
    pub attempt_timeout_ms: u64,
}

/// The cache phase's plan for one request of a cached route: may it use the cache, under
/// which key, and which surrogate keys a copy it stores is tagged with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRequest {
    pub key: [u8; 32],
    pub lookup: cache::Lookup,
    pub surrogate_keys: Vec<String>,
}

impl Gateway {
    /// authenticate: reads the token the route's policy asks for and verifies it with keys
    /// from `keys`.
    pub fn authenticate(
        &self,
        plan: &ForwardPlan<'_>,
        authorization: Option<&str>,
        cookie: Option<&str>,
        keys: &mut dyn KeySource,
        now: u64,
    ) -> Result<Option<Verified>, AuthFailure> {
        let auth = &self.config.auth;
        let token = auth::extract_token(authorization, cookie, auth.cookie.as_deref());
        auth::authenticate(&plan.route.auth, auth, token, keys, now)
    }

    /// flags: the `Fastgate-Flags` value for this caller. Flags are evaluated after
    /// authentication, so percentage rollouts hash the verified subject (or the client IP
    /// when anonymous).
    pub fn flags(&self, subject: Option<&str>, ip: Option<IpAddr>, geo: &ClientGeo) -> String {
        flags::evaluate(
            &self.config.flags,
            subject,
            ip,
            geo.country.as_deref(),
            geo.continent.as_deref(),
        )
    }

    /// cache request, before the lookup: `None` when the route is not cached. Runs after
    /// authentication and flags, because a `per_user` key needs the verified caller and a
    /// `flags` vary input needs this caller's flags. `header` reads the inbound request.
    /// A `per_user` copy belongs to the caller's issuer and subject together
    /// ([`cache::user_partition`]); its `{sub}` surrogate tags name the subject alone, as
    /// [`Gateway::purge_keys`] does, so a write purges its author's copies (two issuers'
    /// same `sub` can only over-purge each other, never share a copy).
    pub fn cache_request_for<'h>(
        &self,
        plan: &ForwardPlan<'_>,
        method: &str,
        header: impl Fn(&str) -> Option<&'h str>,
        caller: Option<&Verified>,
        flags: &str,
    ) -> Option<CacheRequest> {
        let caller = caller.map(|v| (v.iss.as_str(), v.sub.as_str()));
        self.build_cache_request(plan, method, header, caller, flags)
    }

    /// [`cache_request_for`](Self::cache_request_for) for a caller known by its subject
    /// alone (library tests and benches): the subject under an empty issuer, which no
    /// configured issuer has, so such a key never meets a verified caller's.
    pub fn cache_request<'h>(
        &self,
        plan: &ForwardPlan<'_>,
        method: &str,
        header: impl Fn(&str) -> Option<&'h str>,
        subject: Option<&str>,
        flags: &str,
    ) -> Option<CacheRequest> {
        let caller = subject.map(|sub| ("", sub));
        self.build_cache_request(plan, method, header, caller, flags)
    }

    /// The cache request for a caller given as (issuer, subject).
    fn build_cache_request<'h>(
        &self,
        plan: &ForwardPlan<'_>,
        method: &str,
        header: impl Fn(&str) -> Option<&'h str>,
        caller: Option<(&str, &str)>,
        flags: &str,
    ) -> Option<CacheRequest> {
        let policy = plan.route.cache.as_ref()?;
        let subject = caller.map(|(_, sub)| sub);
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
            CacheMode::PerUser => caller.map(|(iss, sub)| cache::user_partition(iss, sub)),
            CacheMode::Public => None,
        };
        let key = cache::cache_key(
            method,
            &plan.path,
            plan.query.as_deref(),
            &vary,
            partition.as_deref(),
            &self.config.cache,
        );
        let mut surrogate_keys = cache::surrogate_keys(&policy.surrogate_keys, subject);
        surrogate_keys.push(cache::uri_tag(&plan.path));
        Some(CacheRequest {
            key,
            lookup,
            surrogate_keys,
        })
    }

    /// purge after write: the surrogate keys a write purges once it has succeeded. Any
    /// unsafe method answered without an error (2xx or 3xx) invalidates what may be stored
    /// for its own (rewritten) `path` (RFC 9111 §4.4); a 2xx also purges the route's `purge`
    /// templates.
    pub fn purge_keys(
        &self,
        route: &Route,
        method: &str,
        status: u16,
        path: &str,
        subject: Option<&str>,
    ) -> Vec<String> {
        if fastgate_wire::method::is_safe(method) || !(200..400).contains(&status) {
            return Vec::new();
        }
        let mut keys = match status {
            200..=299 => cache::surrogate_keys(&route.purge, subject),
            _ => Vec::new(),
        };
        if self.may_cache(route, path) {
            keys.push(cache::uri_tag(path));
        }
        keys
    }

    /// Whether anything may be stored for `path`: the route that answered caches, or a GET
    /// of the path would take a route that does. Writes to paths no cached route serves
    /// purge nothing (a purge is not free on the platform).
    fn may_cache(&self, route: &Route, path: &str) -> bool {
        let get = RouteInput {
            method: "GET",
            path,
            host: None,
            headers: &[],
        };
        route.cache.is_some()
            || route::match_route(&self.config.routes, &get).is_ok_and(|r| r.cache.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::plan::RequestFacts;

    fn caller(iss: &str, sub: &str) -> Verified {
        Verified {
            sub: sub.into(),
            iss: iss.into(),
            exp: 0,
            uid: None,
            scopes: Vec::new(),
            roles: Vec::new(),
            claims: serde_json::Map::new(),
        }
    }

    /// A `per_user` copy is the issuer's and the subject's together: the same `sub` from
    /// two issuers never shares an entry, while purge tags still follow the subject.
    #[test]
    fn per_user_keys_are_issuer_and_subject() {
        let gw = Gateway::new(Config::embedded().unwrap());
        let facts = RequestFacts {
            method: "GET",
            path: "/api/user/profile",
            ..Default::default()
        };
        let plan = gw.plan(&facts).next.unwrap();
        let request = |who: &Verified| {
            gw.cache_request_for(&plan, "GET", |_| None, Some(who), "")
                .unwrap()
        };
        let ours = request(&caller("fastgate-origin", "alice@example.com"));
        let theirs = request(&caller("partner-idp", "alice@example.com"));
        let again = request(&caller("fastgate-origin", "alice@example.com"));
        assert_ne!(ours.key, theirs.key, "same sub, other issuer: other copy");
        assert_eq!(ours.key, again.key);
        assert_eq!(ours.surrogate_keys, theirs.surrogate_keys);
        assert_eq!(
            ours.surrogate_keys,
            vec![
                format!("user:{}", cache::subject_tag("alice@example.com")),
                cache::uri_tag("/api/user/profile")
            ],
            "purge tags follow the subject, as purge_keys renders them"
        );
        // Anonymous callers of a per-user route bypass the cache.
        let anonymous = gw
            .cache_request_for(&plan, "GET", |_| None, None, "")
            .unwrap();
        assert!(matches!(anonymous.lookup, cache::Lookup::Bypass { .. }));
    }
}
