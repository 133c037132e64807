//! The one context a request carries through the adapter's phases. Each phase reads what
//! earlier phases learned and records what later ones (and the response filter and the
//! log line) need, so no phase passes its findings out through parameters.

use std::net::IpAddr;
use std::time::Instant;

use fastgate::auth::Verified;
use fastgate::geo::{ClientGeo, GeoLevel};
use fastgate::plan::{Gateway, PlanCtx};
use fastgate::ratelimit::{RateLimitSpec, Verdict};
use fastgate::route::Route;
use fastgate::session::Session;

use std::rc::Rc;

use super::core_cache::Revalidation;
use super::headers::ClientHeaders;
use super::release::Release;
use super::telemetry::Trace;

pub(crate) struct Ctx<'g> {
    pub gateway: &'g Gateway,
    /// The client's header fields, read once ([`ClientHeaders`]).
    pub headers: &'g ClientHeaders,
    pub started: Instant,
    /// The `Fastgate-Config` value: which config answered (version, hash, source).
    pub config_header: String,
    pub method: String,
    pub client_ip: Option<IpAddr>,
    pub geo: ClientGeo,
    /// What the planning phases learned: request id, route, CORS headers.
    pub plan: PlanCtx<'g>,
    /// The matched route, once the request is on its way to the origin.
    pub route: Option<&'g Route>,
    /// The path the origin is asked for (after the route's rewrite): what a write purges.
    pub origin_path: String,
    pub geo_level: Option<GeoLevel>,
    /// The verified caller, once authenticate admitted the request.
    pub verified: Option<Verified>,
    /// Why authentication failed (the problem detail; never the token).
    pub auth_failure: Option<String>,
    /// The rate limit this request was counted against, and the verdict.
    pub limit: Option<(&'g RateLimitSpec, Verdict)>,
    /// The `Fastgate-Flags` value for this caller.
    pub flags: String,
    /// The `Cache-Status` value, once the cache phase ran.
    pub cache_status: Option<String>,
    /// Backends tried and phase timings, for the log line and `Server-Timing`.
    pub trace: Trace,
    /// Work that waits until the client has its answer (a stale entry's refresh).
    pub deferred: Option<Revalidation<'g>>,
    /// The release answering this request (`None`: none is active).
    pub release: Option<Rc<Release>>,
    /// The release was chosen by a preview host: no shared cache, `noindex`.
    pub preview: bool,
    /// The client reached us over TLS.
    pub tls: bool,
    /// Cookies may be `Secure` (`__Host-`): TLS, or a loopback host.
    pub secure_scheme: bool,
    /// The browser session the cookie opened to, if the request is authenticated by one.
    pub session: Option<Session>,
    /// The request carried a session cookie that no longer opens (cleared on the way out).
    pub stale_session: bool,
}

impl<'g> Ctx<'g> {
    pub fn new(
        gateway: &'g Gateway,
        headers: &'g ClientHeaders,
        started: Instant,
        config_header: String,
    ) -> Self {
        Ctx {
            gateway,
            headers,
            started,
            config_header,
            method: String::new(),
            client_ip: None,
            geo: ClientGeo::default(),
            plan: PlanCtx {
                request_id: String::new(),
                route_id: None,
                cors_headers: Vec::new(),
            },
            route: None,
            origin_path: String::new(),
            geo_level: None,
            verified: None,
            auth_failure: None,
            limit: None,
            flags: String::new(),
            cache_status: None,
            trace: Trace::default(),
            deferred: None,
            release: None,
            preview: false,
            tls: false,
            secure_scheme: false,
            session: None,
            stale_session: false,
        }
    }

    /// The verified subject, the key of per-user limits, caches and purges.
    pub fn subject(&self) -> Option<&str> {
        self.verified.as_ref().map(|v| v.sub.as_str())
    }
}
