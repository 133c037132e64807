//! The axum layer: the signature check in front of the whole router. It passes only the
//! probes and the public key set without a signature, and answers every refusal with the
//! same 401, whatever the reason (the reason goes to the log).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::verify::{Verifier, FLAGS, IDENTITY};
use crate::error::DetailOut;
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

/// The middleware: exempt paths pass (with any `Fastgate-Identity`/`Fastgate-Flags`
/// removed, since nothing vouches for them); every other request needs a valid signature,
/// and its [`fastgate_wire::EdgeIdentity`] is then put in the request's extensions for
/// `auth::Caller::user`.
pub async fn enforce(
    State(verifier): State<Arc<Verifier>>,
    mut req: Request,
    next: Next,
) -> Response {
    if EXEMPT_PATHS.contains(&req.uri().path()) {
        let headers = req.headers_mut();
        headers.remove(IDENTITY);
        headers.remove(FLAGS);
        return next.run(req).await;
    }
    let now = fastgate_wire::unix_now();
    match verifier.verify(req.method(), req.uri(), req.headers(), now) {
        Ok(identity) => {
            req.extensions_mut().insert(identity);
            next.run(req).await
        }
        Err(reason) => {
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
