//! The Wasm adapter: one request, one straight line of phases over one [`Ctx`], in the
//! spirit of Pingora's `ProxyHttp`. Each phase is a short function in [`phases`] that
//! either continues or returns [`Early`] — the response to send now:
//!
//! 1. `request_filter`: load the config, classify (request id, client facts) and run the
//!    library's planning phases (normalize, route, preflight, rewrite, sanitize, select);
//! 2. `limit_body` ([`body`]): a body over the route's limit is refused before any work;
//! 3. `authenticate` (a bearer token, or the browser session's cookie: [`session`]), then
//!    `csrf` (an unsafe request the session authenticated proves it is same-origin);
//! 4. `rate_limit`; 5. `flags`; 6. `session_route` (logout answered, login's origin);
//! 7. `serve_static`: a `static` route is answered from the release's files
//!    ([`static_files`]); 8. `sign` (the identity key);
//! 9. `cache_or_proxy`: the cache lookup ([`core_cache`]) or a plain send ([`proxy`]),
//!    then `after_login` (a login's token sealed into the session cookie);
//! 10. `purge_after_write`;
//!
//! then, however the request ended, `response_filter` (CORS, `RateLimit`, `Cache-Status`,
//! timings, ids) and `logging`; a stale entry's refresh runs after the client has its
//! answer. Decisions live in the library; these modules hold the platform plumbing:
//! [`platform`] (config, Secret Store, raw URI), [`keys`] (HS256 secrets, cached JWKS),
//! [`limiter`] (rate-limit counters), [`health`] (shared down-marks), [`core_cache`]
//! (Core Cache transactions), [`proxy`] (signed sends with failover) and [`telemetry`].

mod body;
mod client;
mod core_cache;
mod ctx;
mod headers;
mod health;
mod keys;
mod limiter;
mod ops;
mod phases;
mod platform;
mod proxy;
mod release;
mod session;
mod static_files;
mod telemetry;

use std::time::Instant;

use fastly::{Request, Response};

use ctx::Ctx;

/// The response a phase answers with now, ending the request's way to the origin. Boxed:
/// a `Response` is over a kilobyte, and every phase's `Result` would carry that size.
pub(crate) struct Early(pub Box<Response>);

impl From<Response> for Early {
    fn from(resp: Response) -> Self {
        Early(Box::new(resp))
    }
}

/// Answers the client's request, then does what may wait until the client has its answer.
/// Never inlined: the one frame every request's work sits under, which the guest profile
/// (`cargo xtask bench edge`) anchors on.
#[inline(never)]
pub fn serve(mut req: Request) {
    let started = Instant::now();
    let headers = headers::ClientHeaders::of(&req);
    let raw_uri = platform::raw_uri(&req);
    if let Some(resp) = ops::handle(&mut req, &headers, raw_uri.as_deref()) {
        return answered_by_no_release(resp);
    }
    let (selected, gateway) = match select_release(&headers) {
        Ok(loaded) => loaded,
        Err(Early(resp)) => return answered_by_no_release(*resp),
    };
    let mut ctx = Ctx::new(&gateway.gateway, &headers, started, gateway.header.clone());
    ctx.release = selected.release;
    ctx.preview = selected.preview;
    let resp = match run(&mut ctx, req, raw_uri.as_deref()) {
        Ok(resp) => resp,
        Err(Early(resp)) => *resp,
    };
    let mut resp = phases::response_filter(&mut ctx, resp);
    session::clear_if_stale(&ctx, &mut resp);
    let log = phases::logging(&ctx, &resp);
    resp.send_to_client();
    telemetry::write_log(ctx.gateway.config().log_endpoint.as_deref(), &log);
    if let Some(revalidation) = ctx.deferred.take() {
        revalidation.run(ctx.gateway.config().log_endpoint.as_deref());
    }
}

/// An answer no release gave (the ops endpoint, a refused preview) still says so.
fn answered_by_no_release(resp: Response) {
    resp.with_header(
        fastgate::release::RELEASE_HEADER,
        fastgate::release::NO_RELEASE,
    )
    .send_to_client();
}

/// The release in force (a preview by host, else the active one) and the config it
/// brings: read before anything else, so one request sees one release throughout.
fn select_release(
    headers: &headers::ClientHeaders,
) -> Result<(release::Selected, std::rc::Rc<platform::Loaded>), Early> {
    let selected = release::select(headers)?;
    let gateway = platform::load_gateway(selected.release.as_deref())?;
    Ok((selected, gateway))
}

/// The request phases, in order.
fn run(ctx: &mut Ctx<'_>, mut req: Request, raw_uri: Option<&str>) -> Result<Response, Early> {
    let plan = phases::request_filter(ctx, &req, raw_uri)?;
    body::limit_body(ctx, &mut req, &plan)?;
    phases::authenticate(ctx, &plan)?;
    session::csrf(ctx)?;
    phases::rate_limit(ctx, &mut req, &plan)?;
    phases::flags(ctx);
    session::session_route(ctx)?;
    static_files::serve_static(ctx, &plan)?;
    let upstream = phases::sign(ctx, plan)?;
    let resp = phases::cache_or_proxy(ctx, req, upstream);
    let resp = session::after_login(ctx, resp);
    phases::purge_after_write(ctx, &resp);
    Ok(resp)
}
