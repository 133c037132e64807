//! The static phase: a route marked `static` is answered from the release's files, read
//! from the KV Store and streamed to the client without passing through guest memory. The
//! library decides which file, which headers, 304 or 404 (`fastgate::release::answer`);
//! this module reads the bytes and writes the response.

use fastly::http::StatusCode;
use fastly::kv_store::KVStore;
use fastly::Response;

use fastgate::plan::ForwardPlan;
use fastgate::problem::{Problem, ProblemKind};
use fastgate::release::{self, Manifest, StaticAnswer, StaticRequest, ALLOW, STORE};

use super::ctx::Ctx;
use super::platform::problem_response;
use super::Early;

/// static: answer a static route now; any other route goes on to the origin.
pub(crate) fn serve_static(ctx: &Ctx<'_>, plan: &ForwardPlan<'_>) -> Result<(), Early> {
    if !plan.route.static_files {
        return Ok(());
    }
    Err(Early::from(respond(ctx, &plan.path)))
}

fn respond(ctx: &Ctx<'_>, path: &str) -> Response {
    let id = &ctx.plan.request_id;
    let Some(release) = ctx.release.as_ref() else {
        let p = Problem::new(ProblemKind::NotFound, "no release is active", id);
        return problem_response(&p);
    };
    let req = StaticRequest {
        method: &ctx.method,
        accept_encoding: ctx.headers.get("accept-encoding"),
        if_none_match: ctx.headers.get("if-none-match"),
    };
    let policy = &ctx.gateway.config().static_policy;
    let mut resp = match release::answer(&release.manifest, path, req, policy) {
        StaticAnswer::File {
            key,
            content_type,
            content_encoding,
            etag,
            cache_control,
            vary_accept_encoding,
            length: _,
            head_only: _,
        } => {
            let Some(mut resp) = file(&key) else {
                let p = Problem::new(ProblemKind::Internal, "a release file is missing", id);
                return problem_response(&p);
            };
            if content_type.starts_with("text/html") && !policy.content_security_policy.is_empty() {
                resp.set_header("content-security-policy", &policy.content_security_policy);
                resp.set_header("referrer-policy", "same-origin");
            }
            resp.set_header("content-type", content_type);
            if let Some(coding) = content_encoding {
                resp.set_header("content-encoding", coding.token());
            }
            with_validators(&mut resp, &etag, &cache_control, vary_accept_encoding);
            resp
        }
        StaticAnswer::NotModified {
            etag,
            cache_control,
            vary,
        } => {
            let mut resp = Response::from_status(StatusCode::NOT_MODIFIED);
            with_validators(&mut resp, &etag, &cache_control, vary);
            resp
        }
        StaticAnswer::NotFound => {
            if let Some(page) = not_found_page(ctx, &release.manifest, path) {
                return page;
            }
            let p = Problem::new(ProblemKind::NotFound, "no such file in this release", id);
            return problem_response(&p);
        }
        StaticAnswer::MethodNotAllowed => {
            let p = Problem::method_not_allowed(&ctx.method, ALLOW.to_owned(), id);
            return problem_response(&p);
        }
    };
    resp.set_header("x-content-type-options", "nosniff");
    if ctx.preview {
        // A preview is for whoever asked for it: no shared or browser cache keeps it.
        resp.set_header("cache-control", "no-store");
    }
    resp
}

/// 200 with the stored file at `key` as its body; `None` if it is gone. A `HEAD` gets the
/// body too: the platform sends none for a `HEAD`, and frames the answer with the length a
/// `GET` would have (RFC 9110 §9.3.2), which a `Content-Length` set by hand would not keep.
fn file(key: &str) -> Option<Response> {
    let store = KVStore::open(STORE).ok().flatten()?;
    let mut found = store.lookup(key).ok()?;
    Some(Response::from_status(StatusCode::OK).with_body(found.take_body()))
}

/// A person who follows a dead link gets the release's own `/404.html` (status 404): only a
/// navigation (`Accept` names HTML) to a path that does not look like a file. A missing
/// script, stylesheet or image, hashed or not, stays a 404 problem+json, never HTML.
fn not_found_page(ctx: &Ctx<'_>, manifest: &Manifest, path: &str) -> Option<Response> {
    let navigation = ctx
        .headers
        .get("accept")
        .is_some_and(|a| a.contains("text/html"));
    let file_like = path
        .rsplit('/')
        .next()
        .is_some_and(|name| name.contains('.'));
    if !navigation || file_like || release::is_hashed_asset(path) || ctx.method != "GET" {
        return None;
    }
    let page = manifest.files.get("/404.html")?;
    let mut resp = file(&release::file_key(&page.hash))?;
    resp.set_status(StatusCode::NOT_FOUND);
    resp.set_header("content-type", page.content_type.as_str());
    resp.set_header("cache-control", "no-store");
    let policy = &ctx.gateway.config().static_policy;
    if !policy.content_security_policy.is_empty() {
        resp.set_header("content-security-policy", &policy.content_security_policy);
    }
    Some(resp)
}

fn with_validators(resp: &mut Response, etag: &str, cache_control: &str, vary: bool) {
    resp.set_header("etag", etag);
    resp.set_header("cache-control", cache_control);
    if vary {
        resp.set_header("vary", "Accept-Encoding");
    }
}
