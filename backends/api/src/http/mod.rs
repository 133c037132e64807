//! The router: routes, FastAPI-shaped 404/405 and CORS as the reference configures it (the
//! request-id/logging layer wraps it all in [`crate::build`]).

pub mod account;
pub mod body;
pub mod freshness;
pub mod health_check;
pub mod idempotency;
pub mod meta;
pub mod models;
pub mod work;

use std::time::Duration;

use axum::handler::Handler;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::IntoResponse;
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use std::task::{Context, Poll};

use axum::http::{Request, Response};
use futures_util::future::Either;
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};

use crate::http::models::DetailOut;
use crate::AppState;

pub fn router(state: AppState, allowed_origins: &[String]) -> Router {
    Router::new()
        .route("/health", get(meta::health))
        .route("/ready", get(meta::ready))
        .route("/openapi.json", tagged_get(meta::openapi))
        .route("/docs", tagged_get(meta::docs))
        .route("/.well-known/jwks.json", tagged_get(meta::jwks))
        .route("/api/auth/signup", post(account::signup))
        .route("/api/auth/login", post(account::login))
        .route("/api/user/profile", tagged_get(account::profile))
        .route("/api/user/{user_id}", tagged_get(account::get_user))
        .route("/api/process", idempotent_post(work::process, &state))
        .route("/api/uploads", idempotent_post(work::upload, &state))
        .route("/api/summaries", tagged_get(work::summaries))
        .route("/api/query", post(work::query))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(CorsForOriginsLayer(cors(allowed_origins)))
}

/// A POST with a side effect, made safe to retry with `Idempotency-Key`
/// ([`idempotency::idempotent`]).
fn idempotent_post<H, T>(handler: H, state: &AppState) -> MethodRouter<AppState>
where
    H: Handler<T, AppState>,
    T: 'static,
{
    post(handler).route_layer(from_fn_with_state(state.clone(), idempotency::idempotent))
}

/// A GET whose 200 answers carry an `ETag` and honour `If-None-Match`
/// ([`freshness::validators`]): every read except the liveness probes.
fn tagged_get<H, T>(handler: H) -> MethodRouter<AppState>
where
    H: Handler<T, AppState>,
    T: 'static,
{
    get(handler).route_layer(from_fn(freshness::validators))
}

/// Runs CORS only for requests that carry `Origin`, as Starlette's `CORSMiddleware` does: a
/// request without it is not a CORS request and gets no CORS headers, not even `Vary`.
/// tower-http's `Cors` would build (and mostly discard) a header map for every request,
/// which on `/health` was a measurable share of the work.
#[derive(Clone)]
struct CorsForOriginsLayer(CorsLayer);

impl<S: Clone> tower::Layer<S> for CorsForOriginsLayer {
    type Service = CorsForOrigins<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CorsForOrigins {
            cors: self.0.layer(inner.clone()),
            plain: inner,
        }
    }
}

#[derive(Clone)]
struct CorsForOrigins<S> {
    plain: S,
    cors: Cors<S>,
}

impl<S, B, R> tower::Service<Request<B>> for CorsForOrigins<S>
where
    S: tower::Service<Request<B>, Response = Response<R>> + Clone,
    R: Default,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Either<S::Future, tower_http::cors::ResponseFuture<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        // Both wrap clones of one router, which is always ready.
        match self.plain.poll_ready(cx) {
            Poll::Ready(Ok(())) => self.cors.poll_ready(cx),
            other => other,
        }
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if req.headers().contains_key(header::ORIGIN) {
            Either::Right(self.cors.call(req))
        } else {
            Either::Left(self.plain.call(req))
        }
    }
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        Json(DetailOut {
            detail: "Not Found".into(),
        }),
    )
}

async fn method_not_allowed() -> impl IntoResponse {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(DetailOut {
            detail: "Method Not Allowed".into(),
        }),
    )
}

/// Starlette's `CORSMiddleware(allow_origins=ALLOWED_ORIGINS, allow_credentials=True,
/// allow_methods=[GET, POST, PUT, DELETE], allow_headers=[Authorization, Content-Type])`.
/// A `*` entry mirrors the request origin, as Starlette does when credentials are allowed.
fn cors(origins: &[String]) -> CorsLayer {
    let allow_origin = if origins.iter().any(|o| o.trim() == "*") {
        AllowOrigin::mirror_request()
    } else {
        let list: Vec<HeaderValue> = origins
            .iter()
            .filter_map(|o| match HeaderValue::from_str(o.trim()) {
                Ok(v) => Some(v),
                Err(_) => {
                    tracing::warn!(origin = %o, "ignoring invalid ALLOWED_ORIGINS entry");
                    None
                }
            })
            .collect();
        AllowOrigin::list(list)
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600))
}
