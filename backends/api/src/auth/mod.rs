//! Authentication: argon2id passwords, JWT issue/verify (HS256 and ES256 with a rotating
//! key ring published as JWKS), and the `current_user` check handlers call.

pub mod keys;
pub mod password;
pub mod tokens;

use axum::http::{header, HeaderMap};

use crate::error::ApiError;
pub use tokens::{Claims, Tokens};

/// The reference's `current_user`: a `Bearer` token of an accepted algorithm, or a 401.
pub fn current_user(tokens: &Tokens, headers: &HeaderMap) -> Result<Claims, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized("Not authenticated"))?;
    tokens.verify(token).map_err(|e| {
        tracing::debug!(error = %e, "token rejected");
        ApiError::Unauthorized("Invalid token")
    })
}
