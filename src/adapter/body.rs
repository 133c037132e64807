//! The body-limit phase: a request body larger than its route accepts is answered 413
//! before any other work (authentication, the login rate-limit key, signing), and without
//! reading past the limit.
//!
//! - A declared `Content-Length` over the limit is refused unread.
//! - Otherwise (a smaller length, or `Transfer-Encoding: chunked` with none) the body is
//!   read through a bound of limit + 1 bytes: one byte more than allowed proves it too
//!   large. What was read is put back on the request, so the later phases that read the
//!   body (the login key, the signature's digest, the send and its failover copies) work on
//!   bytes already known to be within the limit.
//! - A request that declares no body (HTTP/1 with neither `Content-Length` nor
//!   `Transfer-Encoding`, or `Content-Length: 0`) is left as it is: nothing to read.

use std::io::Read;

use fastly::http::Version;
use fastly::Request;

use fastgate::plan::ForwardPlan;
use fastgate::problem::{Problem, ProblemKind};

use super::ctx::Ctx;
use super::headers::ClientHeaders;
use super::platform::problem_response;
use super::Early;

/// body limit: refuse a body over the route's `max_body_bytes` with 413, reading at most
/// one byte past it. Runs after the planning phases (it needs the route) and before
/// authenticate.
pub(crate) fn limit_body(
    ctx: &mut Ctx<'_>,
    req: &mut Request,
    plan: &ForwardPlan<'_>,
) -> Result<(), Early> {
    let limit = ctx.gateway.max_body_bytes(plan.route);
    let id = ctx.plan.request_id.as_str();
    let bad_request = |detail: &str| problem(Problem::new(ProblemKind::BadRequest, detail, id));
    let Ok(declared) = declared_length(ctx.headers) else {
        return Err(bad_request("the Content-Length is not a number"));
    };
    match declared {
        Some(n) if n > limit => return Err(problem(Problem::content_too_large(limit, id))),
        Some(0) => return Ok(()),
        None if declares_no_body(req, ctx.headers) => return Ok(()),
        _ => {}
    }
    match read_bounded(req, limit, declared.unwrap_or(0)) {
        Ok(Bounded::Within) => Ok(()),
        Ok(Bounded::TooLarge) => Err(problem(Problem::content_too_large(limit, id))),
        Err(_) => Err(bad_request("the request body could not be read")),
    }
}

fn problem(p: Problem) -> Early {
    Early::from(problem_response(&p))
}

/// A `Content-Length` that is present but not a number (bytes, not only UTF-8: a value
/// that is not text must not count as absent, or its body would go unread and unbounded).
struct NotANumber;

fn declared_length(headers: &ClientHeaders) -> Result<Option<u64>, NotANumber> {
    let Some(value) = headers.value("content-length") else {
        return Ok(None);
    };
    let text = std::str::from_utf8(value.as_bytes()).map_err(|_| NotANumber)?;
    text.trim().parse().map(Some).map_err(|_| NotANumber)
}

/// HTTP/1 frames a request body only with `Content-Length` or `Transfer-Encoding`
/// (RFC 9112 §6.3): with neither there is none. HTTP/2 and later may send one without.
fn declares_no_body(req: &Request, headers: &ClientHeaders) -> bool {
    let http1 = matches!(
        req.get_version(),
        Version::HTTP_09 | Version::HTTP_10 | Version::HTTP_11
    );
    http1 && !headers.contains("transfer-encoding")
}

/// What a bounded read of the body found.
enum Bounded {
    /// The whole body, now back on the request as bytes.
    Within,
    /// More than the limit: the rest is left unread.
    TooLarge,
}

/// Reads at most `limit + 1` bytes of the body; within the limit, puts them back.
/// `declared` only sizes the buffer (never beyond the limit); the bound is what protects.
fn read_bounded(req: &mut Request, limit: u64, declared: u64) -> std::io::Result<Bounded> {
    let mut body = req.take_body();
    let capacity = usize::try_from(declared.min(limit)).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity);
    (&mut body)
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        return Ok(Bounded::TooLarge);
    }
    req.set_body(bytes);
    Ok(Bounded::Within)
}
