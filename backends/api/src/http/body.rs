//! Reading a request body the way FastAPI does before validation: no body is "missing",
//! a JSON content type (or none) is decoded with CPython's rules, anything else is handed
//! to the model as raw text (and then fails as "not a dictionary").
//!
//! It is an extractor, so it runs before the handler's own checks: FastAPI, too, decodes
//! the body (422 `json_invalid`) before `current_user` (401).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, BODY_UNPARSABLE};
use crate::json;
use crate::validation::BodyInput;

impl<S: Send + Sync> FromRequest<S> for BodyInput {
    /// The `Bytes` extractor's own rejection, or the decode error in FastAPI's shape.
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        read(content_type.as_ref(), &bytes).map_err(IntoResponse::into_response)
    }
}

fn read(content_type: Option<&HeaderValue>, bytes: &[u8]) -> Result<BodyInput, ApiError> {
    if bytes.is_empty() {
        return Ok(BodyInput::Missing);
    }
    if !is_json(content_type) {
        return Ok(BodyInput::Raw(String::from_utf8_lossy(bytes).into_owned()));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::http(StatusCode::BAD_REQUEST, BODY_UNPARSABLE))?;
    json::parse(text)
        .map(BodyInput::Json)
        .map_err(ApiError::from)
}

/// FastAPI decodes JSON when there is no content type, or for `application/json` and
/// `application/*+json`.
fn is_json(content_type: Option<&HeaderValue>) -> bool {
    let Some(ct) = content_type else {
        return true;
    };
    let Ok(ct) = ct.to_str() else {
        return false;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match mime.split_once('/') {
        Some(("application", sub)) => sub == "json" || sub.ends_with("+json"),
        _ => false,
    }
}
