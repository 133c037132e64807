//! Browser sessions in the adapter (`fastgate::session` has the why): the cookie opened
//! before authentication, the CSRF proof after it, the session routes (logout answered at
//! the edge, a login's origin answer turned into the session's cookies).

use std::io::Read;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use fastly::cache::core::{self as cache, CacheKey};
use fastly::http::StatusCode;
use fastly::Response;

use fastgate::problem::{Problem, ProblemKind};
use fastgate::route::SessionRole;
use fastgate::session::{
    check_csrf, check_origin, clear_cookies, session_cookie, set_cookies, CsrfFacts, Session,
    SessionKeys, CSRF_HEADER, MAX_SESSION_S, SESSION_KEYS_SECRET,
};

use super::ctx::Ctx;
use super::platform::{problem_response, secret};
use super::Early;

/// The most of the origin's login answer read: a token and its type.
const MAX_LOGIN_ANSWER: u64 = 64 * 1024;

fn keys() -> Option<SessionKeys> {
    let text = secret(SESSION_KEYS_SECRET)?;
    SessionKeys::parse(std::str::from_utf8(&text).ok()?).ok()
}

/// Before authenticate: the `Authorization` value a session cookie stands for, when the
/// client sent none of its own and the cookie opens. A cookie that does not open (expired,
/// rotated out, forged) is no credential at all: the route's policy decides.
pub(crate) fn open(ctx: &mut Ctx<'_>) -> Option<String> {
    if ctx.headers.contains("authorization") {
        return None;
    }
    let value = session_cookie(ctx.headers.get("cookie"), ctx.secure_scheme)?;
    let opened = keys().and_then(|k| k.open(value, fastgate::http::unix_now()).ok());
    let Some(session) = opened.filter(|_| !is_revoked(value)) else {
        // Ended, revoked or rotated out: the answer clears it, so the page stops
        // believing it is signed in.
        ctx.stale_session = true;
        return None;
    };
    let authorization = format!("Bearer {}", session.token);
    ctx.session = Some(session);
    Some(authorization)
}

/// On the way out: a session cookie that no longer opens is cleared with the CSRF cookie.
pub(crate) fn clear_if_stale(ctx: &Ctx<'_>, resp: &mut Response) {
    if ctx.stale_session && !resp.contains_header("set-cookie") {
        for cookie in clear_cookies(ctx.secure_scheme) {
            resp.append_header("set-cookie", cookie);
        }
    }
}

/// After authenticate: a request the session authenticated proves it is same-origin when
/// its method is unsafe (403 otherwise).
pub(crate) fn csrf(ctx: &Ctx<'_>) -> Result<(), Early> {
    let (Some(session), Some(_)) = (&ctx.session, &ctx.verified) else {
        return Ok(());
    };
    check(ctx, &session.csrf)
}

fn check(ctx: &Ctx<'_>, expected: &str) -> Result<(), Early> {
    let facts = CsrfFacts {
        method: &ctx.method,
        sec_fetch_site: ctx.headers.get("sec-fetch-site"),
        origin: ctx.headers.get("origin"),
        host: ctx.headers.get("host"),
        tls: ctx.tls,
        token: ctx.headers.value(CSRF_HEADER).map(|v| v.as_bytes()),
        expected,
    };
    check_csrf(&facts).map_err(|e| {
        let p = Problem::new(ProblemKind::Forbidden, e.to_string(), &ctx.plan.request_id);
        Early::from(problem_response(&p))
    })
}

/// The session routes: logout is answered here; a login goes on to the origin (see
/// [`after_login`]) once it is not a cross-site form post (login CSRF: signing a victim
/// into the attacker's account). A client that is no browser sends neither field and passes.
pub(crate) fn session_route(ctx: &Ctx<'_>) -> Result<(), Early> {
    let Some(role) = ctx.route.and_then(|r| r.session) else {
        return Ok(());
    };
    let browser = ctx.headers.contains("sec-fetch-site") || ctx.headers.contains("origin");
    // No token is asked of a login (there is no session yet) nor of a logout (ending a
    // session harms no one); where the request comes from still is.
    if browser && !same_origin(ctx) {
        let detail = "a cross-site request cannot sign in or out";
        let p = Problem::new(ProblemKind::Forbidden, detail, &ctx.plan.request_id);
        return Err(Early::from(problem_response(&p)));
    }
    match role {
        SessionRole::Login => Ok(()),
        SessionRole::Logout => {
            revoke(ctx);
            let mut resp = Response::from_status(StatusCode::NO_CONTENT);
            for cookie in clear_cookies(ctx.secure_scheme) {
                resp.append_header("set-cookie", cookie);
            }
            Err(Early::from(resp.with_header("cache-control", "no-store")))
        }
    }
}

/// The Core Cache key marking a sealed value signed out: its hash, never the value.
fn revoked_key(value: &str) -> CacheKey {
    let digest = fastgate::release::sha256_hex(value.as_bytes());
    CacheKey::from(format!("fastgate/session/v1/revoked/{digest}"))
}

/// A sealed session is stateless, so a copy of the cookie taken before signing out would
/// open until it ends. Signing out marks it revoked until then (per POP: the Core Cache).
fn revoke(ctx: &Ctx<'_>) {
    let Some(value) = session_cookie(ctx.headers.get("cookie"), ctx.secure_scheme) else {
        return;
    };
    let Some(session) = keys().and_then(|k| k.open(value, fastgate::http::unix_now()).ok()) else {
        return;
    };
    let left = session
        .exp
        .saturating_sub(fastgate::http::unix_now())
        .max(1);
    let _ = cache::insert(revoked_key(value), Duration::from_secs(left))
        .execute()
        .map(|body| body.finish());
}

fn is_revoked(value: &str) -> bool {
    matches!(cache::lookup(revoked_key(value)).execute(), Ok(Some(_)))
}

/// Whether the request says it comes from this origin (the first half of the CSRF proof).
fn same_origin(ctx: &Ctx<'_>) -> bool {
    let h = |name| ctx.headers.get(name);
    check_origin(h("sec-fetch-site"), h("origin"), h("host"), ctx.tls).is_ok()
}

/// After the proxy: the origin's answer to a session login becomes the session. 200 with a
/// token: 204 with the sealed session cookie and the CSRF cookie. Wrong credentials (the
/// origin's 400): 401 problem. Anything else passes through as the origin said it.
pub(crate) fn after_login(ctx: &Ctx<'_>, mut resp: Response) -> Response {
    if ctx.route.and_then(|r| r.session) != Some(SessionRole::Login) {
        return resp;
    }
    let id = &ctx.plan.request_id;
    match resp.get_status().as_u16() {
        200 => {}
        400 | 401 => {
            let p = Problem::new(ProblemKind::Unauthorized, "Incorrect email or password", id);
            return problem_response(&p);
        }
        _ => return resp,
    }
    let mut body = Vec::new();
    let read = resp
        .take_body()
        .take(MAX_LOGIN_ANSWER)
        .read_to_end(&mut body);
    let token = read.ok().and_then(|_| access_token(&body));
    let (Some(token), Some(keys)) = (token, keys()) else {
        let p = Problem::new(ProblemKind::Unavailable, "sessions are unavailable", id);
        return problem_response(&p);
    };
    start(&keys, token, ctx.secure_scheme)
}

/// 204 with the cookies of a new session around `token`.
fn start(keys: &SessionKeys, token: String, secure: bool) -> Response {
    let now = fastgate::http::unix_now();
    let exp = token_exp(&token).map_or(now + MAX_SESSION_S, |e| e.min(now + MAX_SESSION_S));
    let (mut nonce, mut csrf) = ([0u8; 24], [0u8; 16]);
    if getrandom::fill(&mut nonce).is_err() || getrandom::fill(&mut csrf).is_err() {
        return Response::from_status(StatusCode::SERVICE_UNAVAILABLE);
    }
    let csrf = B64.encode(csrf);
    let sealed = keys.seal(
        &Session {
            token,
            csrf: csrf.clone(),
            exp,
        },
        nonce,
    );
    let mut resp = Response::from_status(StatusCode::NO_CONTENT);
    for cookie in set_cookies(&sealed, &csrf, exp.saturating_sub(now), secure) {
        resp.append_header("set-cookie", cookie);
    }
    resp.with_header("cache-control", "no-store")
}

/// The origin's `{"access_token": "...", "token_type": "bearer"}`.
fn access_token(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("access_token")?.as_str().map(str::to_owned)
}

/// The token's `exp`, read only to bound the cookie's life: every request verifies the
/// token in full, signature and `exp` included.
fn token_exp(token: &str) -> Option<u64> {
    let payload = B64.decode(token.split('.').nth(1)?).ok()?;
    serde_json::from_slice::<serde_json::Value>(&payload)
        .ok()?
        .get("exp")?
        .as_u64()
}
