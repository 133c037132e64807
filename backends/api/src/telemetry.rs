//! JSON logs via `tracing` (filtered by `RUST_LOG`, default `info`), and a middleware that
//! puts every request in a span carrying the edge's `X-Request-Id` (or a fresh one), logs
//! one line per request and echoes the id back.

use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Accepts an inbound id only if it is short and printable, so logs cannot be forged.
fn inbound_id(req: &Request) -> Option<HeaderValue> {
    let v = req.headers().get(&REQUEST_ID)?;
    let s = v.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then(|| v.clone())
}

/// A fresh random (v4) UUID, drawn from the thread's CSPRNG rather than one `getrandom`
/// system call per request (which `Uuid::new_v4` makes).
fn fresh_id() -> HeaderValue {
    let bytes: [u8; 16] = rand::Rng::gen(&mut rand::thread_rng());
    let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = uuid.hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("-"))
}

pub async fn request_context(req: Request, next: Next) -> Response {
    let id = inbound_id(&req).unwrap_or_else(fresh_id);
    // The per-request span and line are info-level: when the filter drops them (e.g.
    // `RUST_LOG=warn`), skip building them and reading the clock altogether.
    if !tracing::enabled!(tracing::Level::INFO) {
        let mut response = next.run(req).await;
        response.headers_mut().insert(REQUEST_ID, id);
        return response;
    }
    let span = tracing::info_span!(
        "request",
        request_id = %id.to_str().unwrap_or("-"),
        method = %req.method(),
        path = %req.uri().path(),
    );
    let start = Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            latency_us = start.elapsed().as_micros() as u64,
            "request"
        )
    });
    response.headers_mut().insert(REQUEST_ID, id);
    response
}
