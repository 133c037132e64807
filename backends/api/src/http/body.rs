//! Reading a request body the way FastAPI does before validation: no body is "missing",
//! a JSON content type (or none) is decoded with CPython's rules, anything else is handed
//! to the model as raw text (and then fails as "not a dictionary").

use axum::body::Bytes;
use axum::http::{header, HeaderMap, StatusCode};

use crate::error::ApiError;
use crate::json::{self, Value};
use crate::validation::{BodyInput, ErrorItem, Loc};

pub fn read(headers: &HeaderMap, bytes: &Bytes) -> Result<BodyInput, ApiError> {
    if bytes.is_empty() {
        return Ok(BodyInput::Missing);
    }
    if !is_json(headers) {
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
fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
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
