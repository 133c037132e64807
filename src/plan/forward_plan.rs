//! The plan for a request that goes on towards the origin, and the library halves of the
//! phases the adapter runs with it: authenticate, flags, cache request, purge after write.
//! They borrow the route from the config instead of copying its policies per request.

use std::net::IpAddr;

use crate::auth::{self, AuthFailure, KeySource, Verified};
use crate::cache::{self, CacheMode, VaryInput};
use crate::config::Failover;
use crate::flags;
use crate::geo::{ClientGeo, GeoLevel};
use crate::route::Route;
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
    /// authentication and flags, because a `per_user` key needs the verified subject and a
    /// `flags` vary input needs this caller's flags. `header` reads the inbound request.
    pub fn cache_request<'h>(
        &self,
        plan: &ForwardPlan<'_>,
        method: &str,
        header: impl Fn(&str) -> Option<&'h str>,
        subject: Option<&str>,
        flags: &str,
    ) -> Option<CacheRequest> {
        let policy = plan.route.cache.as_ref()?;
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
        let query = plan.query.as_deref();
        let key = cache::cache_key(
            method,
            &plan.path,
            query,
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

    /// purge after write: the surrogate keys a write purges once it has succeeded — the
    /// route's `purge` templates for a 2xx answer to POST, PUT, PATCH or DELETE.
    pub fn purge_keys(
        &self,
        route: &Route,
        method: &str,
        status: u16,
        subject: Option<&str>,
    ) -> Vec<String> {
        let write = matches!(method, "POST" | "PUT" | "PATCH" | "DELETE");
        if !write || !(200..300).contains(&status) {
            return Vec::new();
        }
        cache::surrogate_keys(&route.purge, subject)
    }
}
