//! Liveness, readiness, JWKS, and the OpenAPI document with its docs page.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::OpenApi;

use crate::auth::keys::Jwk;
use crate::http::models::*;
use crate::AppState;

#[utoipa::path(get, path = "/health", responses((status = 200, body = StatusOut)))]
pub async fn health() -> Json<StatusOut> {
    Json(StatusOut { status: "ok" })
}

#[utoipa::path(get, path = "/ready", responses((status = 200, body = StatusOut), (status = 503, body = DetailOut)))]
pub async fn ready(State(st): State<AppState>) -> Response {
    if st.db.ping().await {
        Json(StatusOut { status: "ready" }).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(DetailOut {
                detail: "database unreachable".into(),
            }),
        )
            .into_response()
    }
}

#[derive(Serialize)]
pub struct JwkSet {
    keys: Vec<Jwk>,
}

/// ES256 public keys (current and still-valid older ones); empty under HS256.
pub async fn jwks(State(st): State<AppState>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(JwkSet {
            keys: st.tokens.jwks(),
        }),
    )
        .into_response()
}

#[derive(OpenApi)]
#[openapi(
    info(title = "fastgate origin", description = "Rust port of the reference FastAPI SaaS backend"),
    paths(
        health, ready,
        crate::http::account::signup, crate::http::account::login,
        crate::http::account::profile, crate::http::account::get_user,
        crate::http::work::process, crate::http::work::upload,
        crate::http::work::summaries, crate::http::work::query,
    ),
    components(schemas(UserV2)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

pub async fn openapi() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A self-contained page that renders `/openapi.json` (no CDN, nothing fetched at build).
pub async fn docs() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}
