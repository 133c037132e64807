//! The adapter's phases, in the order [`super::run`] calls them. Each is short: it asks
//! the library to decide, performs the platform calls the decision needs, records what it
//! learned in the [`Ctx`], and either continues or answers now with an [`Early`].

use std::time::Instant;

use fastly::http::StatusCode;
use fastly::{Request, Response};

use fastgate::identity;
use fastgate::plan::{self, ForwardPlan};
use fastgate::problem::Problem;
use fastgate::ratelimit;
use fastgate::release::{NO_RELEASE, RELEASE_HEADER};
use fastgate::request_id;

use super::client;
use super::core_cache::{self, CachedRequest};
use super::ctx::Ctx;
use super::keys::PlatformKeys;
use super::limiter;
use super::platform::{self, problem_response};
use super::proxy::{Signer, Upstream};
use super::telemetry::{micros, LogLine};
use super::Early;

/// request filter: classify the request and run the library's planning phases
/// (normalize, route, preflight, rewrite, sanitize, select).
pub(crate) fn request_filter<'g>(
    ctx: &mut Ctx<'g>,
    req: &Request,
    raw_uri: Option<&str>,
) -> Result<ForwardPlan<'g>, Early> {
    ctx.method = req.get_method_str().to_owned();
    ctx.client_ip = client::ip(req);
    ctx.geo = client::geo(ctx.client_ip);
    let facts = platform::request_facts(req, ctx.headers, raw_uri, ctx.client_ip, &ctx.geo);
    ctx.tls = facts.tls;
    ctx.secure_scheme = fastgate::session::secure_scheme(ctx.tls, ctx.headers.get("host"));
    let plan = ctx.gateway.plan(&facts);
    ctx.plan = plan.ctx;
    let forward = plan.next.map_err(early_response)?;
    ctx.route = Some(forward.route);
    ctx.origin_path.clone_from(&forward.path);
    ctx.geo_level = Some(forward.geo_level);
    Ok(forward)
}

/// The response for an answer the planning phases gave.
fn early_response(early: plan::Early) -> Early {
    Early::from(match early {
        plan::Early::Problem(p) => problem_response(&p),
        plan::Early::Preflight(headers) => {
            let mut resp = Response::from_status(StatusCode::NO_CONTENT);
            for (name, value) in headers {
                resp.set_header(name, value);
            }
            resp
        }
        plan::Early::Redirect { status, location } => Response::from_status(
            StatusCode::from_u16(status).unwrap_or(StatusCode::PERMANENT_REDIRECT),
        )
        .with_header("location", location),
    })
}

/// authenticate: the route's token policy, with keys from the Secret Store and JWKS cache.
pub(crate) fn authenticate(ctx: &mut Ctx<'_>, plan: &ForwardPlan<'_>) -> Result<(), Early> {
    let started = Instant::now();
    let mut keys = PlatformKeys::new(&ctx.gateway.config().auth.jwks);
    let from_session = super::session::open(ctx);
    let authorization = from_session.as_deref().or(ctx.headers.get("authorization"));
    let cookie = ctx.headers.get("cookie");
    let now = fastgate::http::unix_now();
    let verified = ctx
        .gateway
        .authenticate(plan, authorization, cookie, &mut keys, now);
    ctx.trace.timings.auth = Some(micros(started));
    match verified {
        Ok(verified) => {
            ctx.verified = verified;
            Ok(())
        }
        Err(failure) => {
            ctx.auth_failure = Some(failure.detail());
            let mut resp = problem_response(&Problem::auth(&failure, &ctx.plan.request_id));
            if let Some(challenge) = failure.www_authenticate() {
                resp.set_header("www-authenticate", challenge);
            }
            Err(resp.into())
        }
    }
}

/// rate limit: count the request against the route's limit; refuse it with 429 past it.
pub(crate) fn rate_limit<'g>(
    ctx: &mut Ctx<'g>,
    req: &mut Request,
    plan: &ForwardPlan<'g>,
) -> Result<(), Early> {
    let Some(spec) = plan.route.rate_limit.as_ref() else {
        return Ok(());
    };
    let store = ctx.gateway.config().rate_limiter;
    let verdict = limiter::check(
        spec,
        store,
        &plan.route.id,
        ctx.subject(),
        ctx.client_ip,
        ctx.headers,
        req,
    );
    let allowed = verdict.allowed;
    let retry = verdict.retry_after_s.unwrap_or(verdict.reset_s);
    ctx.limit = Some((spec, verdict));
    if allowed {
        return Ok(());
    }
    // The RateLimit headers are added by the response filter, as on every answer.
    let p = Problem::rate_limited(&ctx.plan.request_id, retry);
    Err(problem_response(&p).into())
}

/// flags: this caller's feature flags, evaluated after authentication.
pub(crate) fn flags(ctx: &mut Ctx<'_>) {
    ctx.flags = ctx.gateway.flags(ctx.subject(), ctx.client_ip, &ctx.geo);
}

/// sign: the identity the origin will see, and the key to sign it with. Without the key
/// the edge cannot vouch for anyone, so it fails closed before any origin or cache work.
pub(crate) fn sign<'g>(ctx: &mut Ctx<'g>, plan: ForwardPlan<'g>) -> Result<Upstream<'g>, Early> {
    let Some(signer) = Signer::from_secret_store() else {
        let p = Problem::identity_unavailable(&ctx.plan.request_id);
        return Err(problem_response(&p).into());
    };
    Ok(Upstream {
        plan,
        identity: identity::identity_header(ctx.verified.as_ref()),
        flags: ctx.flags.clone(),
        request_id: ctx.plan.request_id.clone(),
        signer,
    })
}

/// cache lookup / proxy: through the edge cache on a cached route, else straight to the
/// origin with failover.
pub(crate) fn cache_or_proxy<'g>(
    ctx: &mut Ctx<'g>,
    req: Request,
    upstream: Upstream<'g>,
) -> Response {
    let started = Instant::now();
    // A preview's config may cache other things under the same keys: it never reads or
    // writes the shared cache.
    let policy = upstream.plan.route.cache.as_ref().filter(|_| !ctx.preview);
    let creq = policy.and_then(|_| {
        let header = |name: &str| ctx.headers.get(name);
        let caller = ctx.verified.as_ref();
        ctx.gateway
            .cache_request_for(&upstream.plan, &ctx.method, header, caller, &ctx.flags)
    });
    let resp = match (creq, policy) {
        (Some(creq), Some(policy)) => {
            let request = CachedRequest {
                req,
                policy,
                creq,
                upstream,
                headers: ctx.headers,
            };
            let cached = core_cache::through_cache(request, &mut ctx.trace);
            ctx.cache_status = Some(cached.status);
            ctx.deferred = cached.revalidation;
            cached.response
        }
        _ => upstream.send(req, &mut ctx.trace),
    };
    if ctx.trace.backend.is_some() {
        ctx.trace.timings.origin = Some(micros(started));
    }
    resp
}

/// purge after write: a successful write purges the surrogate keys its route names,
/// before its response returns, so a read that follows it never sees an older copy.
pub(crate) fn purge_after_write(ctx: &Ctx<'_>, resp: &Response) {
    let Some(route) = ctx.route else { return };
    let status = resp.get_status().as_u16();
    let keys = ctx
        .gateway
        .purge_keys(route, &ctx.method, status, &ctx.origin_path, ctx.subject());
    core_cache::purge(&keys);
}

/// response filter: what every answer carries, however the request ended.
pub(crate) fn response_filter(ctx: &mut Ctx<'_>, mut resp: Response) -> Response {
    keep_private(ctx, &mut resp);
    if !ctx.plan.cors_headers.is_empty() {
        drop_origin_cors(&mut resp);
    }
    for (name, value) in &ctx.plan.cors_headers {
        if name.eq_ignore_ascii_case("vary") {
            platform::append_vary(&mut resp, value);
        } else {
            resp.set_header(*name, value.as_str());
        }
    }
    if let (Some((spec, verdict)), Some(route)) = (&ctx.limit, ctx.route) {
        for (name, value) in ratelimit::headers(spec, &route.id, verdict) {
            resp.set_header(name, value);
        }
    }
    let cache_status = ctx
        .cache_status
        .get_or_insert_with(|| format!("{}; fwd=bypass", fastgate::cache::CACHE_NAME));
    resp.set_header("cache-status", cache_status.as_str());
    ctx.trace.timings.total = micros(ctx.started);
    resp.set_header("server-timing", ctx.trace.timings.server_timing());
    resp.set_header(request_id::HEADER, &ctx.plan.request_id);
    resp.set_header("fastgate-config", ctx.config_header.as_str());
    let release = ctx.release.as_ref().map(|r| r.manifest.name.as_str());
    resp.set_header(RELEASE_HEADER, release.unwrap_or(NO_RELEASE));
    if ctx.preview {
        resp.set_header("x-robots-tag", "noindex");
    }
    resp
}

/// Private stays private: a per-user route's answer, or one to an authenticated caller
/// the origin did not mark shareable, however it was produced (`fastgate::cache::private`).
fn keep_private(ctx: &Ctx<'_>, resp: &mut Response) {
    let per_user = ctx
        .route
        .and_then(|r| r.cache.as_ref())
        .is_some_and(|p| p.mode == fastgate::cache::CacheMode::PerUser);
    let cache_control = Some(text_fields(resp, "cache-control").join(", "));
    let cache_control = cache_control.filter(|v| !v.is_empty());
    let authenticated = ctx.verified.is_some();
    let private =
        fastgate::cache::private_cache_control(cache_control.as_deref(), per_user, authenticated);
    if let Some(value) = private {
        resp.set_header("cache-control", value);
    }
}

/// Where the edge answers CORS itself, the origin's own CORS headers (and its
/// `Vary: Origin`) go before the edge adds its own.
fn drop_origin_cors(resp: &mut Response) {
    let names = resp.get_header_names_str().into_iter().map(str::to_owned);
    let origin_cors: Vec<String> = names
        .filter(|n| fastgate::cors::is_cors_response_header(n))
        .collect();
    for name in origin_cors {
        resp.remove_header(name);
    }
    let vary = text_fields(resp, "vary");
    match fastgate::cors::origin_vary_without_cors(vary.iter().map(String::as_str)) {
        Some(kept) => resp.set_header("vary", kept),
        None => drop(resp.remove_header("vary")),
    }
}

/// Every field line of `name` that is text (a value that is not UTF-8 is left out).
fn text_fields(resp: &Response, name: &str) -> Vec<String> {
    resp.get_header_all(name)
        .filter_map(|v| std::str::from_utf8(v.as_bytes()).ok().map(str::to_owned))
        .collect()
}

/// logging: the request's one JSON line (never a token), however the request ended.
pub(crate) fn logging(ctx: &Ctx<'_>, resp: &Response) -> String {
    let line = LogLine {
        client_ip: ctx.client_ip,
        country: ctx.geo.country.as_deref(),
        continent: ctx.geo.continent.as_deref(),
        route: ctx.plan.route_id,
        geo_level: ctx.geo_level.map(|g| g.as_str()),
        auth: ctx.auth_failure.clone(),
        cache: ctx.cache_status.clone().unwrap_or_default(),
        status: resp.get_status().as_u16(),
        bytes: resp.get_content_length().map(|n| n as u64),
        ..LogLine::new(&ctx.plan.request_id, ctx.method.clone(), &ctx.trace)
    };
    serde_json::to_string(&line).unwrap_or_default()
}
