//! The planning phases themselves, in the order [`Gateway::plan`] runs them.

use crate::config::Limits;
use crate::cors;
use crate::geo::{self, GeoLevel};
use crate::http::method;
use crate::path;
use crate::problem::{Problem, ProblemKind};
use crate::request_id;
use crate::route::{self, NoRoute, Route, RouteInput};
use crate::sanitize::{self, HeaderEdits};

use super::{Early, Gateway, PlanCtx, RequestFacts};

/// method: only a method the edge forwards, spelled exactly as RFC 9110 spells it, goes
/// any further (501 otherwise): the origin must see the method the edge signed.
pub(super) fn method(req: &RequestFacts<'_>, request_id: &str) -> Result<(), Early> {
    if method::is_forwarded(req.method) {
        return Ok(());
    }
    Err(Problem::method_not_implemented(request_id).into())
}

/// normalize: the raw target, read whole (400 when it could not be), at most
/// `limits.max_uri_bytes` long (414 above it); then the path decoded where safe, and `..`
/// in any spelling refused.
pub(super) fn normalize(
    req: &RequestFacts<'_>,
    limits: &Limits,
    request_id: &str,
) -> Result<String, Early> {
    if req.path.is_empty() {
        let detail = "the request target could not be read as sent";
        return Err(Problem::new(ProblemKind::BadRequest, detail, request_id).into());
    }
    let max = limits.max_uri_bytes;
    if req.path.len() + req.query.map_or(0, |q| q.len() + 1) > max {
        return Err(Problem::uri_too_long(max, request_id).into());
    }
    path::normalize(req.path)
        .map_err(|e| Problem::new(ProblemKind::BadRequest, e.to_string(), request_id).into())
}

impl Gateway {
    /// route: the first route matching method, path, host and headers. A preflight is
    /// routed as the request it announces.
    pub(super) fn route<'g>(
        &'g self,
        req: &RequestFacts<'_>,
        path: &str,
        ctx: &mut PlanCtx<'g>,
    ) -> Result<&'g Route, Early> {
        let input = RouteInput {
            method: req.announced_method().unwrap_or(req.method),
            path,
            host: req.header("host"),
            headers: &req.headers,
        };
        let route = route::match_route(&self.config.routes, &input).map_err(|e| {
            let id = &ctx.request_id;
            Early::Problem(match e {
                NoRoute::NotFound => {
                    Problem::new(ProblemKind::NotFound, "no route matches this path", id)
                }
                NoRoute::MethodNotAllowed { allow } => {
                    Problem::method_not_allowed(input.method, allow, id)
                }
            })
        })?;
        ctx.route_id = Some(&route.id);
        Ok(route)
    }

    /// cors: a preflight is answered here; any other request of a CORS route learns the
    /// headers its response will carry.
    pub(super) fn cors(
        &self,
        req: &RequestFacts<'_>,
        route: &Route,
        ctx: &mut PlanCtx<'_>,
    ) -> Result<(), Early> {
        let policy = route.cors.as_ref().and_then(|n| self.config.cors.get(n));
        let origin = req.header("origin");
        let Some(announced) = req.announced_method() else {
            if let Some(policy) = policy {
                ctx.cors_headers = cors::decorate(policy, origin);
            }
            return Ok(());
        };
        let denied = |reason: String| {
            Early::Problem(Problem::new(
                ProblemKind::CorsDenied,
                reason,
                &ctx.request_id,
            ))
        };
        let Some(policy) = policy else {
            return Err(denied(
                "this route does not allow cross-origin requests".into(),
            ));
        };
        let requested = req.header("access-control-request-headers");
        match cors::preflight(policy, origin, Some(announced), requested) {
            cors::Preflight::Allowed(headers) => Err(Early::Preflight(headers)),
            cors::Preflight::Denied(reason) => {
                let early = denied(reason);
                ctx.cors_headers = cors::decorate(policy, None);
                Err(early)
            }
            cors::Preflight::NotCors => Err(denied("not a CORS preflight".into())),
        }
    }

    /// select: the route's own backends, or the geo map's list for the client's location.
    pub(super) fn select<'g>(
        &'g self,
        req: &RequestFacts<'_>,
        route: &'g Route,
    ) -> (&'g [String], GeoLevel) {
        match &route.backends {
            Some(list) => (list.as_slice(), GeoLevel::Route),
            None => geo::select_backends(&self.config.geo, &req.geo),
        }
    }
}

/// rewrite: the route's path rewrite, or its redirect (answered now).
pub(super) fn rewrite(
    req: &RequestFacts<'_>,
    route: &Route,
    path: String,
    request_id: &str,
) -> Result<(String, Option<String>), Early> {
    let (path, query) = match &route.rewrite {
        Some(rw) => rw
            .apply(&path, req.query)
            .map_err(|e| Problem::new(ProblemKind::BadRequest, e.to_string(), request_id))?,
        None => (path, req.query.map(str::to_owned)),
    };
    let Some(redirect) = &route.redirect else {
        return Ok((path, query));
    };
    let location = match &query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    Err(Early::Redirect {
        status: redirect.status,
        location,
    })
}

/// sanitize: which client headers never reach the origin, and the forwarding headers the
/// edge rebuilds (the request id among them).
pub(super) fn sanitize(req: &RequestFacts<'_>, request_id: &str) -> HeaderEdits {
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
    headers
}
