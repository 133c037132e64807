//! The reference's work endpoints: process (cache + insert + metric), uploads into the
//! durable pipeline, the caller's summaries, and retrieval over the caller's own documents
//! (the reference searches everyone's: see [`search`]).

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::http::models::*;
use crate::http::{freshness, idempotency};
use crate::validation::BodyInput;
use crate::{clock, search, AppState};

#[utoipa::path(post, path = "/api/process", request_body = ProcessIn, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = idempotency::KEY_DOC)),
    responses((status = 200, body = StatusOut, headers(("Idempotency-Replayed" = String,
            description = "`true` when this is the stored answer to an earlier request with the same key"))),
        (status = 400, body = DetailOut, description = "Malformed `Idempotency-Key`"),
        (status = 401, body = DetailOut),
        (status = 409, body = DetailOut, description = idempotency::IN_PROGRESS_DOC),
        (status = 422, description = idempotency::UNPROCESSABLE_DOC)))]
pub async fn process(
    State(st): State<AppState>,
    caller: Caller,
    effect: Option<axum::Extension<idempotency::Effect>>,
    input: BodyInput,
) -> Result<Json<StatusOut>, ApiError> {
    caller.user(&st.tokens)?;
    let req = ProcessIn::validate(&input)?;
    st.payloads
        .put(format!("cache:{}", req.id), req.payload.to_compact());
    let effect = effect.map(|axum::Extension(e)| e.0);
    st.db.insert_item(req.dump_json(), effect).await?;
    st.api_calls.fetch_add(1, Ordering::Relaxed);
    Ok(Json(StatusOut { status: "ok" }))
}

#[utoipa::path(post, path = "/api/uploads", request_body = UploadIn, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = idempotency::KEY_DOC)),
    responses((status = 202, body = UploadOut, headers(("Idempotency-Replayed" = String,
            description = "`true` when this is the stored answer to an earlier request with the same key"))),
        (status = 400, body = DetailOut, description = "Malformed `Idempotency-Key`"),
        (status = 401, body = DetailOut),
        (status = 409, body = DetailOut, description = idempotency::IN_PROGRESS_DOC),
        (status = 422, description = idempotency::UNPROCESSABLE_DOC)))]
pub async fn upload(
    State(st): State<AppState>,
    caller: Caller,
    effect: Option<axum::Extension<idempotency::Effect>>,
    input: BodyInput,
) -> Result<Response, ApiError> {
    let user = caller.user(&st.tokens)?;
    let req = UploadIn::validate(&input)?;
    // A keyed upload's object is named by its effect, so a second run (after a first one
    // that stored it and died) stores the same object and queues no second job.
    let id = match effect {
        Some(axum::Extension(e)) => uuid::Uuid::from_slice(&hex16(&e.0)).unwrap_or_default(),
        None => uuid::Uuid::new_v4(),
    };
    let key = format!("uploads/{id}");
    // Content first, then the job: a job never points at content that is not stored.
    st.blobs.put(&key, req.content.into_bytes()).await?;
    st.db
        .enqueue_summarize(&key, &user.sub, &clock::iso_now())
        .await?;
    st.wake.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(UploadOut {
            status: "processing",
            key,
        }),
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/summaries", security(("bearer" = [])),
    responses((status = 200, body = [SummaryOut]), (status = 401, body = DetailOut)))]
pub async fn summaries(State(st): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let user = caller.user(&st.tokens)?;
    // Checked before the list is read: a job that finishes in between only makes the answer
    // `no-store` needlessly, never a stale list cacheable.
    let changing = st.db.has_queued_jobs(&user.sub).await?;
    let rows = st.db.summaries_for(&user.sub).await?;
    let out = Json(
        rows.into_iter()
            .map(|r| SummaryOut {
                key: r.key,
                summary: r.summary,
                created_at: r.created_at,
            })
            .collect::<Vec<_>>(),
    );
    let cache_control = if changing {
        freshness::CHANGING
    } else {
        freshness::OWN_DATA
    };
    Ok(freshness::with_cache_control(cache_control, out))
}

#[utoipa::path(post, path = "/api/query", request_body = QueryIn, security(("bearer" = [])),
    responses((status = 200, body = AnswerOut), (status = 401, body = DetailOut), (status = 422)))]
pub async fn query(
    State(st): State<AppState>,
    caller: Caller,
    input: BodyInput,
) -> Result<Json<AnswerOut>, ApiError> {
    let user = caller.user(&st.tokens)?;
    let req = QueryIn::validate(&input)?;
    // Scoped to the caller (a deliberate deviation from the reference, which searches every
    // user's uploads): the owner is the subject uploads are filed under.
    let docs = search::corpus_of(&st.db, &user.sub).await?;
    let answer = tokio::task::spawn_blocking(move || search::answer(&req.query, &docs))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(AnswerOut {
        answer: answer.answer,
        sources: answer.sources,
    }))
}

/// The first 16 bytes of a hex digest.
fn hex16(hex: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = hex
            .get(2 * i..2 * i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0);
    }
    out
}
