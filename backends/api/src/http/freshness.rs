//! HTTP caching metadata for the origin's reads, so a cache in front (the edge's, RFC 9111)
//! can store them and revalidate them cheaply:
//!
//! - [`validators`] (a route layer on every GET except the liveness probes `/health` and
//!   `/ready`, whose answers must never come from a cache) gives every 200 a strong `ETag`
//!   over its exact body, and answers a matching `If-None-Match` with 304 and no body
//!   (RFC 9110 §13.1.2, weak comparison as §13.1.2 requires for `If-None-Match`);
//! - the handlers set `Cache-Control` per resource, because only they know how long their
//!   answer holds ([`USER_ROW`], [`OWN_DATA`], [`CHANGING`]).
//!
//! Bodies here are small JSON documents, so buffering one to hash it costs nothing that
//! matters. The tag is the same in every origin process, so a cache may send a validator
//! it got from one origin to another.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::{Digest, Sha256};

/// The largest body [`validators`] buffers to tag. A larger 200 answer to GET/HEAD is not
/// passed through: it is replaced by a bare 500 (and the error logged). Known defect: such
/// an answer should go out whole, untagged; until that is fixed, keep tagged reads under
/// this size.
const MAX_TAGGED_BODY: usize = 1 << 20;

/// A user row by id: rows never change after sign-up, so any cache may keep it; the edge
/// checks the caller's token before it answers from its copy.
pub const USER_ROW: HeaderValue = HeaderValue::from_static("public, max-age=300");
/// The caller's own data (profile, an idle summaries list). Not `public`: a shared cache
/// may only keep it partitioned per user, which the edge's `per_user` routes do.
pub const OWN_DATA: HeaderValue = HeaderValue::from_static("max-age=300");
/// A resource about to change (summaries while an upload is being processed): storing it
/// would answer later reads with a list the worker is about to extend.
pub const CHANGING: HeaderValue = HeaderValue::from_static("no-store");

/// Adds the `Cache-Control` a handler chose to its answer.
pub fn with_cache_control(value: HeaderValue, response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, value);
    response
}

/// Tags 200 answers to GET/HEAD with an `ETag` and answers a matching `If-None-Match`
/// with 304. A body over 1 MiB (`MAX_TAGGED_BODY`) becomes a 500: a known defect.
pub async fn validators(req: Request, next: Next) -> Response {
    let readable = matches!(*req.method(), Method::GET | Method::HEAD);
    let if_none_match = req.headers().get(header::IF_NONE_MATCH).cloned();
    let response = next.run(req).await;
    if !readable || response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_TAGGED_BODY).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::error!(error = %e, "could not buffer a response body to tag it");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let tag = entity_tag(&bytes);
    let matched = if_none_match
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| none_match_hits(v, &tag));
    if let Ok(value) = HeaderValue::from_str(&tag) {
        parts.headers.insert(header::ETAG, value);
    }
    if matched {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.remove(header::CONTENT_TYPE);
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// A strong entity tag: the first 16 bytes of SHA-256 of the body, base64url.
fn entity_tag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!(
        "\"{}\"",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
    )
}

/// `If-None-Match` matches when it is `*` or lists the tag (weak comparison).
fn none_match_hits(field: &str, tag: &str) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let tag = opaque(tag);
    field
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || (!t.is_empty() && opaque(t) == tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_stable_quoted_and_distinct() {
        let a = entity_tag(br#"{"a":1}"#);
        assert_eq!(a, entity_tag(br#"{"a":1}"#));
        assert_ne!(a, entity_tag(br#"{"a":2}"#));
        assert!(a.starts_with('"') && a.ends_with('"') && a.len() == 24);
    }

    #[test]
    fn if_none_match_uses_weak_comparison() {
        let tag = entity_tag(b"x");
        assert!(none_match_hits(&tag, &tag));
        assert!(none_match_hits(&format!("W/{tag}"), &tag));
        assert!(none_match_hits(&format!("\"other\", {tag}"), &tag));
        assert!(none_match_hits("*", &tag));
        assert!(!none_match_hits("\"other\"", &tag));
        assert!(!none_match_hits("", &tag));
    }
}
