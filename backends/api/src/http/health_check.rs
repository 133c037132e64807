//! Liveness answered before the router, like Envoy's `health_check` filter: load balancers
//! and the edge's probes call `GET /health` more than anything else, and the answer depends
//! on nothing, so it should not pay for the router (path match, the boxed route service
//! cloned per request, matched-path bookkeeping), the handler machinery or the CORS wrapper.
//! It wraps the whole router, inside the request-context layer (so the answer still carries
//! `X-Request-Id` and `Fastgate-Origin`) and outside the edge-signature check, which exempts
//! `/health` anyway. The routed `/health` handler still exists, documented in the OpenAPI,
//! for requests this shortcut leaves alone: any other method (405 as FastAPI answers it)
//! and CORS requests (`Origin`), which get their CORS headers.

use std::future::{ready, Ready};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Request, Response};

/// The body the routed handler serializes for `/health`.
const BODY: &str = r#"{"status":"ok"}"#;

#[derive(Clone, Copy)]
pub struct HealthCheckLayer;

impl<S> tower::Layer<S> for HealthCheckLayer {
    type Service = HealthCheck<S>;
    fn layer(&self, inner: S) -> Self::Service {
        HealthCheck { inner }
    }
}

#[derive(Clone)]
pub struct HealthCheck<S> {
    inner: S,
}

impl<S, B> tower::Service<Request<B>> for HealthCheck<S>
where
    S: tower::Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = futures_util::future::Either<Ready<Result<Response<Body>, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let liveness = req.uri().path() == "/health"
            && matches!(*req.method(), Method::GET | Method::HEAD)
            && !req.headers().contains_key(header::ORIGIN);
        if !liveness {
            return futures_util::future::Either::Right(self.inner.call(req));
        }
        let mut response = Response::new(Body::from(BODY));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        futures_util::future::Either::Left(ready(Ok(response)))
    }
}
