//! The axum layer: the signature check in front of the whole router. It passes only the
//! probes and the public key set without a signature, and answers every refusal with the
//! same 401, whatever the reason (the reason goes to the log).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use fastgate_wire::{remember_until, replay_protected};

use super::body::{self, BodyRefusal};
use super::error::SignatureError;
use super::nonces::{NonceError, NonceStore};
use super::verify::{Verifier, FLAGS, IDENTITY};
use crate::error::{ApiError, DetailOut};
use crate::telemetry::REQUEST_ID;

/// Env var switching enforcement (default on). `false`/`0`/`off`/`no` turns it off.
pub const ENFORCE_VAR: &str = "FASTGATE_VERIFY_EDGE_SIGNATURE";
/// Paths answered without a signature (probes and the public key set).
pub const EXEMPT_PATHS: [&str; 3] = ["/health", "/ready", "/.well-known/jwks.json"];
/// The one body every rejection gets; the precise reason only goes to the log.
pub const REJECTION_DETAIL: &str = "Missing or invalid edge signature";

/// The 401 every refused request gets.
pub fn rejection() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(DetailOut {
            detail: REJECTION_DETAIL.into(),
        }),
    )
        .into_response()
}

/// What the layer checks with: the keys, and the nonces already used.
#[derive(Debug, Clone)]
pub struct Gate {
    pub verifier: Verifier,
    pub nonces: NonceStore,
}

/// Why a request did not get through the gate.
enum Refusal {
    /// A bad signature, body or nonce: the one 401.
    Signature(SignatureError),
    /// An answer that is not about the signature (an unreadable or oversized body).
    Answer(Response),
    /// The nonce store failed: the request cannot be shown not to be a replay.
    Store(sqlx::Error),
}

impl From<SignatureError> for Refusal {
    fn from(e: SignatureError) -> Self {
        Self::Signature(e)
    }
}

impl Gate {
    /// Admits `req` at unix time `now`: the signature (headers only, so a request without a
    /// good MAC is refused before its body is read), then the body against the signed
    /// digest, then, for a request that changes state, its nonce's first use. The identity
    /// goes into the request's extensions for `auth::Caller::user`.
    async fn admit(&self, req: &mut Request, now: u64) -> Result<(), Refusal> {
        let verified = self
            .verifier
            .verify(req.method(), req.uri(), req.headers(), now)?;
        let received = std::mem::take(req.body_mut());
        *req.body_mut() = body::bind(verified.content_digest.as_deref(), received)
            .await
            .map_err(|refusal| match refusal {
                BodyRefusal::Signature(e) => Refusal::Signature(e),
                BodyRefusal::Unreadable(answer) => Refusal::Answer(answer),
            })?;
        if replay_protected(req.method().as_str()) {
            let until = remember_until(verified.expires);
            match self.nonces.remember(&verified.nonce, until, now).await {
                Ok(()) => {}
                Err(NonceError::Replay) => {
                    return Err(SignatureError::Replay(verified.nonce).into());
                }
                Err(NonceError::Db(e)) => return Err(Refusal::Store(e)),
            }
        }
        req.extensions_mut().insert(verified.identity);
        Ok(())
    }
}

/// The middleware: exempt paths pass (with any `Fastgate-Identity`/`Fastgate-Flags`
/// removed, since nothing vouches for them); every other request must pass
/// [`Gate::admit`].
pub async fn enforce(State(gate): State<Arc<Gate>>, mut req: Request, next: Next) -> Response {
    if EXEMPT_PATHS.contains(&req.uri().path()) {
        let headers = req.headers_mut();
        headers.remove(IDENTITY);
        headers.remove(FLAGS);
        return next.run(req).await;
    }
    let now = fastgate_wire::unix_now();
    match gate.admit(&mut req, now).await {
        Ok(()) => next.run(req).await,
        Err(Refusal::Answer(answer)) => answer,
        Err(Refusal::Store(e)) => ApiError::Db(e).into_response(),
        Err(Refusal::Signature(reason)) => {
            let request_id = req
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::warn!(
                %reason,
                request_id,
                method = %req.method(),
                path = %req.uri().path(),
                "edge signature rejected"
            );
            rejection()
        }
    }
}
