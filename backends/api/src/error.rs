//! The one error type handlers return, rendered in FastAPI's shapes:
//! `{"detail": "..."}` for HTTP errors, `{"detail": [...]}` for 422s.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::validation::ErrorItem;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// An `HTTPException(status_code, detail)`.
    #[error("{status}: {detail}")]
    Http {
        status: StatusCode,
        detail: &'static str,
    },
    /// 401 with `WWW-Authenticate: Bearer`, as the reference's `current_user` raises it.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// FastAPI's `RequestValidationError`.
    #[error("request validation failed")]
    Validation(Vec<ErrorItem>),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("object storage: {0}")]
    Storage(#[from] object_store::Error),
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    pub const fn http(status: StatusCode, detail: &'static str) -> Self {
        Self::Http { status, detail }
    }
}

impl From<Vec<ErrorItem>> for ApiError {
    fn from(items: Vec<ErrorItem>) -> Self {
        Self::Validation(items)
    }
}

#[derive(Serialize)]
struct Detail<T> {
    detail: T,
}

/// A `{"detail": "..."}` answer built outside [`ApiError`] (404/405 fallbacks, readiness,
/// the edge-signature rejection), as a named schema for the OpenAPI document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DetailOut {
    pub detail: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Http { status, detail } => (status, Json(Detail { detail })).into_response(),
            ApiError::Unauthorized(detail) => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
                Json(Detail { detail }),
            )
                .into_response(),
            ApiError::Validation(items) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(Detail { detail: items }),
            )
                .into_response(),
            other => {
                // Starlette's ServerErrorMiddleware answers a bare text 500; the cause goes to logs.
                tracing::error!(error = %other, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; charset=utf-8"),
                    )],
                    "Internal Server Error",
                )
                    .into_response()
            }
        }
    }
}
