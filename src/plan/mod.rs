//! The planning phases: everything the edge decides about a request before it spends a
//! hostcall on it, as named phases over one context in the spirit of Pingora's `ProxyHttp`:
//!
//! `method` (501 unless forwarded) → `normalize` (the raw target: 414 / 400) → `route`
//! (404 / 405 with `Allow`) → `cors` (preflights answered) → `rewrite` (and redirects) →
//! `sanitize` → `select`.
//!
//! Each phase is a short method returning `Result<T, Early>`: [`Early`] is the answer to
//! send now (a problem, a preflight, a redirect). What a phase learns that the response
//! needs whatever happens later (the route id, CORS headers) goes into [`PlanCtx`], the
//! library's part of the request context. Nothing here touches the platform: the Wasm
//! adapter (`src/adapter/`) gathers [`RequestFacts`], asks for a [`Plan`], then runs the
//! platform phases (authenticate, rate limit, flags, sign, cache, proxy) with the
//! [`ForwardPlan`] it holds. The later phases' library halves live in `forward_plan`.

mod facts;
mod forward_plan;
mod phases;

use crate::config::Config;
use crate::problem::Problem;
use crate::request_id;
use crate::route::Route;

pub use facts::RequestFacts;
pub use forward_plan::{CacheRequest, ForwardPlan};

/// An answer a phase gives now, ending the request's way to the origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Early {
    /// An error the edge answers itself (RFC 9457).
    Problem(Problem),
    /// A CORS preflight allowed by the route's policy: 204 with these headers.
    Preflight(Vec<(&'static str, String)>),
    Redirect {
        status: u16,
        location: String,
    },
}

impl From<Problem> for Early {
    fn from(p: Problem) -> Self {
        Early::Problem(p)
    }
}

/// The library's per-request context: what the planning phases learned that the response
/// needs however the request ends.
#[derive(Debug)]
pub struct PlanCtx<'g> {
    pub request_id: String,
    /// The matched route, once routing ran.
    pub route_id: Option<&'g str>,
    /// CORS headers for whatever response this request gets (errors included, so a page
    /// can read them), with `Vary: Origin` whenever a policy applies.
    pub cors_headers: Vec<(&'static str, String)>,
}

/// The planning phases' result: the context, and where the request goes next (on to the
/// origin, or an answer now).
#[derive(Debug)]
pub struct Plan<'g> {
    pub ctx: PlanCtx<'g>,
    pub next: Result<ForwardPlan<'g>, Early>,
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

    /// The largest request body `route` accepts: its own `max_body_bytes`, else the
    /// config's `limits.max_body_bytes`.
    pub fn max_body_bytes(&self, route: &Route) -> u64 {
        route
            .max_body_bytes
            .unwrap_or(self.config.limits.max_body_bytes)
    }

    /// Runs the planning phases, in order, and returns the context they built.
    pub fn plan<'g>(&'g self, req: &RequestFacts<'_>) -> Plan<'g> {
        let mut ctx = PlanCtx {
            request_id: request_id::resolve(req.header(request_id::HEADER)),
            route_id: None,
            cors_headers: Vec::new(),
        };
        let next = self.phases(req, &mut ctx);
        Plan { ctx, next }
    }

    /// The phases as one straight line; each may end the request with an [`Early`].
    fn phases<'g>(
        &'g self,
        req: &RequestFacts<'_>,
        ctx: &mut PlanCtx<'g>,
    ) -> Result<ForwardPlan<'g>, Early> {
        phases::method(req, &ctx.request_id)?;
        let path = phases::normalize(req, &self.config.limits, &ctx.request_id)?;
        let route = self.route(req, &path, ctx)?;
        self.cors(req, route, ctx)?;
        let (path, query) = phases::rewrite(req, route, path, &ctx.request_id)?;
        let headers = phases::sanitize(req, &ctx.request_id);
        let (backends, geo_level) = self.select(req, route);
        Ok(ForwardPlan {
            route,
            backends,
            geo_level,
            headers,
            path,
            query,
            failover: &self.config.failover,
            attempt_timeout_ms: route
                .timeout_ms
                .unwrap_or(self.config.failover.attempt_timeout_ms),
        })
    }
}

#[cfg(test)]
mod tests;
