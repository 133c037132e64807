//! Authentication: argon2id passwords, JWT issue/verify (HS256 and ES256 with a rotating
//! key ring published as JWKS), and the `current_user` check handlers run ([`Caller`]).

pub mod keys;
pub mod password;
pub mod rotation;
pub mod tokens;

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};

use crate::error::ApiError;
use fastgate_wire::EdgeIdentity;
pub use tokens::{Claims, Tokens};

/// Who is calling, as far as the request says: its `Authorization` header and the identity
/// the edge signed for it. Extracting it never fails and checks nothing, so each handler
/// decides where the check ([`Caller::user`]) runs: as in FastAPI, after the body is decoded
/// and before parameters and the model are validated.
pub struct Caller {
    authorization: Option<HeaderValue>,
    /// Only ever present when the edge's signature was verified: the `edge_signature` layer
    /// puts it in the request's extensions, and with enforcement off there is none.
    edge: Option<EdgeIdentity>,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self {
            authorization: parts.headers.get(header::AUTHORIZATION).cloned(),
            edge: parts.extensions.get::<EdgeIdentity>().cloned(),
        })
    }
}

impl Caller {
    /// The reference's `current_user`. A verified edge identity with a subject is trusted
    /// as is, without re-parsing the end-user token. Otherwise (an anonymous identity, or no
    /// verification) the `Bearer` token decides, as in FastAPI: a token of an accepted
    /// algorithm, or a 401.
    pub fn user(&self, tokens: &Tokens) -> Result<Claims, ApiError> {
        let edge = self.edge.as_ref();
        if let Some((identity, sub)) = edge.and_then(|e| Some((e, e.subject()?))) {
            return Ok(edge_claims(identity, sub));
        }
        let token = self
            .authorization
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized("Not authenticated"))?;
        tokens.verify(token).map_err(|e| {
            tracing::debug!(error = %e, "token rejected");
            ApiError::Unauthorized("Invalid token")
        })
    }
}

/// The claims a verified edge identity carries, in the shape a verified token yields.
fn edge_claims(identity: &EdgeIdentity, sub: &str) -> Claims {
    let claim = |name: &str| identity.claims.get(name);
    Claims {
        sub: sub.to_owned(),
        uid: identity.uid.clone().unwrap_or_default(),
        iat: claim("iat").and_then(|v| v.as_u64()).unwrap_or(0),
        exp: claim("exp").and_then(|v| v.as_u64()).unwrap_or(0),
        iss: claim("iss")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned(),
        aud: String::new(),
    }
}
