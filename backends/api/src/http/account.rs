//! Sign-up, login and user records. Order of checks follows FastAPI: the body is decoded
//! first (422 `json_invalid`), then `current_user` (401), then parameters and the model (422).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::auth::{password, Caller};
use crate::db::is_unique_violation;
use crate::error::ApiError;
use crate::http::freshness::{self, with_cache_control};
use crate::http::models::*;
use crate::users::UserRow;
use crate::validation::{path_uuid, BodyInput};
use crate::{clock, flags, AppState};

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

#[utoipa::path(post, path = "/api/auth/signup", request_body = SignupIn,
    responses((status = 201, body = SignupOut), (status = 400, body = DetailOut), (status = 422),
        (status = 503, body = DetailOut, description = "Password hashers busy; see `Retry-After`")))]
pub async fn signup(State(st): State<AppState>, input: BodyInput) -> Result<Response, ApiError> {
    let input = SignupIn::validate(&input)?;
    let user = UserRow {
        id: uuid::Uuid::new_v4().to_string(),
        email: input.email,
        full_name: input.full_name,
        joined: clock::today(),
    };
    // Hashers busy: 503 + Retry-After, before any row is written.
    let hash = password::hash(input.password).await?;
    match st.db.insert_user(&user, &hash).await {
        Ok(()) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::http(
                StatusCode::BAD_REQUEST,
                "The user with this email already exists",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    let out = SignupOut {
        id: user.id,
        email: user.email,
        full_name: user.full_name,
    };
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

#[utoipa::path(post, path = "/api/auth/login", request_body = LoginIn,
    responses((status = 200, body = TokenOut), (status = 400, body = DetailOut), (status = 422),
        (status = 503, body = DetailOut, description = "Password hashers busy; see `Retry-After`")))]
pub async fn login(
    State(st): State<AppState>,
    input: BodyInput,
) -> Result<Json<TokenOut>, ApiError> {
    let input = LoginIn::validate(&input)?;
    let found = st.db.credentials(&input.email).await?;
    // Unknown emails verify against a dummy hash so both paths cost one argon2 run.
    let (uid, phc) = match found {
        Some((uid, hash)) => (Some(uid), std::sync::Arc::from(hash)),
        None => (None, st.dummy_hash.clone()),
    };
    let ok = password::verify(input.password, phc).await?;
    let Some(uid) = uid.filter(|_| ok) else {
        return Err(ApiError::http(
            StatusCode::BAD_REQUEST,
            "Incorrect email or password",
        ));
    };
    let token = st.tokens.issue(&input.email, &uid).map_err(internal)?;
    Ok(Json(TokenOut {
        access_token: token,
        token_type: "bearer",
    }))
}

#[utoipa::path(get, path = "/api/user/profile", security(("bearer" = [])),
    responses((status = 200, body = ProfileOut), (status = 401, body = DetailOut), (status = 404, body = DetailOut)))]
pub async fn profile(State(st): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let user = caller.user(&st.tokens)?;
    let row = st
        .users
        .by_email(&user.sub)
        .await?
        .ok_or(ApiError::http(StatusCode::NOT_FOUND, "User not found"))?;
    let out = Json(ProfileOut {
        email: user.sub,
        joined: row.joined.clone(),
    });
    Ok(with_cache_control(freshness::OWN_DATA, out))
}

#[utoipa::path(get, path = "/api/user/{user_id}", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path), ("Fastgate-Flags" = Option<String>, Header, description = "e.g. `new_schema=1`")),
    responses((status = 200, body = UserV1), (status = 401, body = DetailOut), (status = 404, body = DetailOut), (status = 422)))]
pub async fn get_user(
    State(st): State<AppState>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.user(&st.tokens)?;
    let id = path_uuid("user_id", &user_id)?;
    let row = st
        .users
        .by_id(&id.to_string())
        .await?
        .ok_or(ApiError::http(StatusCode::NOT_FOUND, "User not found"))?;
    let row = UserRow::clone(&row);
    let new_schema = flags::flag(&headers, "new_schema").unwrap_or(st.new_schema_default);
    if new_schema {
        let full = row.full_name.unwrap_or_default();
        let (first, last) = full.split_once(' ').unwrap_or((&full, ""));
        let out = UserV2 {
            id: row.id,
            contact: Contact { email: row.email },
            name: Name {
                first: first.to_owned(),
                last: last.to_owned(),
            },
            joined_at: row.joined,
            schema: 2,
        };
        return Ok(user_row_response(Json(out)));
    }
    Ok(user_row_response(Json(UserV1 {
        id: row.id,
        email: row.email,
        full_name: row.full_name,
        joined: row.joined,
    })))
}

/// A user row's answer depends on the `new_schema` flag, which arrives in `Fastgate-Flags`.
fn user_row_response(body: impl IntoResponse) -> Response {
    let mut response = with_cache_control(freshness::USER_ROW, body);
    response.headers_mut().insert(
        axum::http::header::VARY,
        HeaderValue::from_static("fastgate-flags"),
    );
    response
}
