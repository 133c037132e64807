//! The one error type handlers return, rendered in FastAPI's shapes:
//! `{"detail": "..."}` for HTTP errors, `{"detail": [...]}` for 422s.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::auth::password::{self, PasswordError};
use crate::json::{self, Value};
use crate::validation::{ErrorItem, Loc};

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
    /// 503 with `Retry-After`: a bounded resource (the password hashers) stayed busy past
    /// its wait. The origin is alive; the client should come back after `retry_after_s`.
    #[error("busy: {detail}")]
    Busy {
        detail: &'static str,
        retry_after_s: u32,
    },
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

/// A request body's JSON failure, answered as FastAPI answers `request.json()` failing:
/// CPython's `JSONDecodeError` as 422 `json_invalid` (with its message and offset), any other
/// exception (`RecursionError`, `ValueError`; our caps stand for those) as a 400.
impl From<json::DecodeError> for ApiError {
    fn from(e: json::DecodeError) -> Self {
        if e.is_limit() {
            return ApiError::http(StatusCode::BAD_REQUEST, BODY_UNPARSABLE);
        }
        ApiError::Validation(vec![ErrorItem::new(
            "json_invalid",
            vec![Loc::Key("body".into()), Loc::Index(e.pos)],
            "JSON decode error",
            Value::Object(Vec::new()),
        )
        .with_ctx("error", Value::String(e.msg.to_owned()))])
    }
}

/// FastAPI's detail for a body it could not turn into a document (not UTF-8, too deep...).
pub const BODY_UNPARSABLE: &str = "There was an error parsing the body";

/// Password hashing is bounded by [`password`]'s limiter: a full queue is a 503, any other
/// failure an internal error.
impl From<PasswordError> for ApiError {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Busy => ApiError::Busy {
                detail: "Too many password checks in progress, try again shortly",
                retry_after_s: password::RETRY_AFTER_S,
            },
            other => ApiError::Internal(other.to_string()),
        }
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
            ApiError::Busy {
                detail,
                retry_after_s,
            } => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, HeaderValue::from(retry_after_s))],
                Json(Detail { detail }),
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
