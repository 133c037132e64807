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

use crate::error::ApiError;
use crate::json::{self, Value};
use crate::validation::{BodyInput, ErrorItem, Loc};

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
    let text = std::str::from_utf8(bytes).map_err(|_| {
        ApiError::http(
            StatusCode::BAD_REQUEST,
            "There was an error parsing the body",
        )
    })?;
    json::parse(text).map(BodyInput::Json).map_err(|e| {
        ApiError::Validation(vec![ErrorItem::new(
            "json_invalid",
            vec![Loc::Key("body".into()), Loc::Index(e.pos)],
            "JSON decode error",
            Value::Object(Vec::new()),
        )
        .with_ctx("error", Value::String(e.msg.to_owned()))])
    })
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
