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
//! matters; one over [`MAX_TAGGED_BODY`] (a user row can carry a long `full_name`) goes out
//! whole and untagged, so it is never answered 304. The tag is the same in every origin
//! process, so a cache may send a validator it got from one origin to another.

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

/// The largest body [`validators`] buffers to tag: memory held per request is bounded by
/// it. A larger 200 answer goes out whole, with what was read replayed, and untagged.
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
/// with 304. A body over 1 MiB (`MAX_TAGGED_BODY`) is passed through untagged.
pub async fn validators(req: Request, next: Next) -> Response {
    let readable = matches!(*req.method(), Method::GET | Method::HEAD);
    let if_none_match = req.headers().get(header::IF_NONE_MATCH).cloned();
    let response = next.run(req).await;
    if !readable || response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match buffer_up_to(body, MAX_TAGGED_BODY).await {
        Ok(Buffered::Whole(bytes)) => bytes,
        Ok(Buffered::TooLong(body)) => return Response::from_parts(parts, body),
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

/// A response body read up to a limit.
enum Buffered {
    /// All of it, no longer than the limit.
    Whole(Bytes),
    /// Longer than the limit: a body that yields what was read, then the rest, unchanged.
    TooLong(Body),
}

/// Reads `body` until it ends or passes `limit` bytes, holding at most `limit` plus one
/// chunk. A body that declares a larger size is handed back without reading any of it.
async fn buffer_up_to(body: Body, limit: usize) -> Result<Buffered, axum::Error> {
    if usize::try_from(body.size_hint().lower()).map_or(true, |n| n > limit) {
        return Ok(Buffered::TooLong(body));
    }
    let mut stream = body.into_data_stream();
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut len = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        len = len.saturating_add(chunk.len());
        chunks.push(chunk);
        if len > limit {
            let read = futures_util::stream::iter(chunks.into_iter().map(Ok));
            return Ok(Buffered::TooLong(Body::from_stream(read.chain(stream))));
        }
    }
    Ok(Buffered::Whole(match chunks.len() {
        1 => chunks.swap_remove(0),
        _ => chunks.concat().into(),
    }))
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

    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    async fn read_all(body: Body) -> Vec<u8> {
        axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap()
            .to_vec()
    }

    /// A body of `n` chunks of `size` bytes with no declared length (as a stream is).
    fn streamed(n: usize, size: usize) -> (Body, Vec<u8>) {
        let chunks: Vec<Vec<u8>> = (0..n).map(|i| vec![b'a' + i as u8; size]).collect();
        let whole = chunks.concat();
        let stream = futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, std::io::Error>(Bytes::from(c))),
        );
        (Body::from_stream(stream), whole)
    }

    #[tokio::test]
    async fn buffering_stops_past_the_limit_and_loses_nothing() {
        let (body, whole) = streamed(4, 600);
        match buffer_up_to(body, 1000).await.unwrap() {
            Buffered::TooLong(rest) => assert_eq!(read_all(rest).await, whole),
            Buffered::Whole(_) => panic!("2,400 bytes buffered under a 1,000-byte limit"),
        }
        let declared = Body::from(vec![7u8; 1001]);
        match buffer_up_to(declared, 1000).await.unwrap() {
            Buffered::TooLong(rest) => assert_eq!(read_all(rest).await, vec![7u8; 1001]),
            Buffered::Whole(_) => panic!("a declared 1,001 bytes buffered"),
        }
        let (body, whole) = streamed(2, 500);
        match buffer_up_to(body, 1000).await.unwrap() {
            Buffered::Whole(bytes) => assert_eq!(bytes.to_vec(), whole),
            Buffered::TooLong(_) => panic!("exactly the limit is taggable"),
        }
    }

    /// Regression (issue 14, defect 8): a GET answer over 1 MiB was replaced by a bare 500.
    /// It goes out whole, untagged, and a conditional GET cannot turn it into a 304.
    #[tokio::test]
    async fn a_read_over_the_tag_limit_passes_through_untagged() {
        let big = "x".repeat(MAX_TAGGED_BODY + 1);
        let answer = big.clone();
        let app = Router::new()
            .route("/big", get(move || async move { answer }))
            .route(
                "/streamed",
                get(|| async { streamed(3, MAX_TAGGED_BODY / 2).0 }),
            )
            .layer(axum::middleware::from_fn(validators));
        for (path, inm) in [
            ("/big", None),
            ("/big", Some("*")),
            ("/streamed", Some("*")),
        ] {
            let mut req = Request::builder().uri(path);
            if let Some(v) = inm {
                req = req.header(header::IF_NONE_MATCH, v);
            }
            let res = app
                .clone()
                .oneshot(req.body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{path} {inm:?}");
            assert!(res.headers().get(header::ETAG).is_none(), "{path}");
            let body = read_all(res.into_body()).await;
            let expected = if path == "/big" {
                big.clone().into_bytes()
            } else {
                streamed(3, MAX_TAGGED_BODY / 2).1
            };
            assert!(body == expected, "{path}: {} bytes", body.len());
        }
    }
}
