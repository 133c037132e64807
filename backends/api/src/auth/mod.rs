//! Authentication: argon2id passwords, JWT issue/verify (HS256 and ES256 with a rotating
//! key ring published as JWKS), and the `current_user` check handlers call.

pub mod keys;
pub mod password;
pub mod tokens;

use axum::http::{header, HeaderMap};

use crate::edge_signature::EdgeIdentity;
use crate::error::ApiError;
pub use tokens::{Claims, Tokens};

/// The reference's `current_user`. `edge` is the identity the edge signed for this request;
/// it is only ever present when the signature was verified (the `edge_signature` layer puts
/// it in the request's extensions; with enforcement off there is none). A verified identity
/// with a subject is trusted as is, without re-parsing the end-user token. Otherwise (an
/// anonymous identity, or no verification) the `Bearer` token decides, as in FastAPI: a
/// token of an accepted algorithm, or a 401.
pub fn current_user(
    tokens: &Tokens,
    headers: &HeaderMap,
    edge: Option<&EdgeIdentity>,
) -> Result<Claims, ApiError> {
    if let Some((identity, sub)) = edge.and_then(|e| Some((e, e.subject()?))) {
        let claim = |name: &str| identity.claims.get(name);
        return Ok(Claims {
            sub: sub.to_owned(),
            uid: identity.uid.clone().unwrap_or_default(),
            iat: claim("iat").and_then(|v| v.as_u64()).unwrap_or(0),
            exp: claim("exp").and_then(|v| v.as_u64()).unwrap_or(0),
            iss: claim("iss")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned(),
            aud: String::new(),
        });
    }
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
