//! The router: routes, FastAPI-shaped 404/405, CORS as the reference configures it, and
//! the request-id/logging middleware.

pub mod account;
pub mod body;
pub mod meta;
pub mod models;
pub mod work;

use std::time::Duration;

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::http::models::DetailOut;
use crate::AppState;

pub fn router(state: AppState, allowed_origins: &[String]) -> Router {
    Router::new()
        .route("/health", get(meta::health))
        .route("/ready", get(meta::ready))
        .route("/openapi.json", get(meta::openapi))
        .route("/docs", get(meta::docs))
        .route("/.well-known/jwks.json", get(meta::jwks))
        .route("/api/auth/signup", post(account::signup))
        .route("/api/auth/login", post(account::login))
        .route("/api/user/profile", get(account::profile))
        .route("/api/user/{user_id}", get(account::get_user))
        .route("/api/process", post(work::process))
        .route("/api/uploads", post(work::upload))
        .route("/api/summaries", get(work::summaries))
        .route("/api/query", post(work::query))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(axum::middleware::from_fn(crate::telemetry::request_context))
        .layer(cors(allowed_origins))
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
