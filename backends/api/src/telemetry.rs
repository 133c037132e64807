//! JSON logs via `tracing` (filtered by `RUST_LOG`, default `info`), and the layer that
//! puts every request in a span carrying the edge's `X-Request-Id` (or a fresh one), logs
//! one line per request and echoes the id back.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::http::{HeaderName, HeaderValue, Request};
use axum::response::Response;
use tracing::Span;
use tracing_subscriber::EnvFilter;

pub const REQUEST_ID: HeaderName = HeaderName::from_static(fastgate_wire::REQUEST_ID_HEADER);

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
fn inbound_id<B>(req: &Request<B>) -> Option<HeaderValue> {
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

/// The outermost layer: gives every request a span carrying its id (the edge's
/// `X-Request-Id`, or a fresh one), logs one line per request, and stamps the response
/// with the id and the answering origin's name (`Fastgate-Origin`), rejections included.
///
/// A hand-written tower layer rather than `axum::middleware::from_fn`, because it runs on
/// every request: no boxed future, no cloned inner service, and when the filter drops
/// info-level events (`RUST_LOG=warn`) no span, clock read or log line either.
#[derive(Clone)]
pub struct RequestContextLayer {
    origin: HeaderValue,
}

impl RequestContextLayer {
    pub fn new(origin: HeaderValue) -> Self {
        Self { origin }
    }
}

impl<S> tower::Layer<S> for RequestContextLayer {
    type Service = RequestContext<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequestContext {
            inner,
            origin: self.origin.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RequestContext<S> {
    inner: S,
    origin: HeaderValue,
}

impl<S, B> tower::Service<Request<B>> for RequestContext<S>
where
    S: tower::Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RequestContextFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let id = inbound_id(&req).unwrap_or_else(fresh_id);
        let (span, started) = if tracing::enabled!(tracing::Level::INFO) {
            let span = tracing::info_span!(
                "request",
                request_id = %id.to_str().unwrap_or("-"),
                method = %req.method(),
                path = %req.uri().path(),
            );
            (span, Some(Instant::now()))
        } else {
            (Span::none(), None)
        };
        let inner = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        RequestContextFuture {
            inner,
            span,
            started,
            id: Some(id),
            origin: self.origin.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    pub struct RequestContextFuture<F> {
        #[pin]
        inner: F,
        span: Span,
        started: Option<Instant>,
        id: Option<HeaderValue>,
        origin: HeaderValue,
    }
}

impl<F, E> Future for RequestContextFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = {
            let _entered = this.span.enter();
            std::task::ready!(this.inner.poll(cx))?
        };
        if let Some(start) = this.started {
            this.span.in_scope(|| {
                tracing::info!(
                    status = response.status().as_u16(),
                    latency_us = start.elapsed().as_micros() as u64,
                    "request"
                )
            });
        }
        let headers = response.headers_mut();
        if let Some(id) = this.id.take() {
            headers.insert(REQUEST_ID, id);
        }
        headers.insert(crate::ORIGIN_HEADER, this.origin.clone());
        Poll::Ready(Ok(response))
    }
}
