//! Binding a Telegram chat to a usuario (§9.1): a one-time link code, and
//! unlinking. Nothing here issues tokens for a Telegram id (§11).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use gad_shared::http_error::ApiError;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::caller::Authenticated;
use crate::prefer::Prefer;
use crate::routes::user_jobs::queue;
use crate::routes::users::target_id;
use crate::state::AppState;

/// The bot's username in deep links. A constant until ingress settings carry one.
pub const BOT_USERNAME: &str = "gad_bot";

/// How long a link code may be used.
const CODE_TTL_MINUTES: i32 = 10;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/telegram/link-code", post(link_code))
        .route("/api/v1/telegram/link", delete(unlink_self))
        .route("/api/v1/telegram/link/{usuario_id}", delete(unlink))
}

/// The SHA-256 stored for a code. The bot hashes what the user sent, trimmed
/// and lower-cased, the same way.
pub fn code_hash(code: &str) -> Vec<u8> {
    Sha256::digest(code.trim().to_ascii_lowercase().as_bytes()).to_vec()
}

/// A new code for the caller; its earlier unused codes stop working.
#[utoipa::path(post, path = "/api/v1/telegram/link-code", tag = "telegram",
    responses((status = 201, description = "A one-time code (10 minutes); earlier unused codes stop working",
        body = crate::openapi::answers::LinkCode)))]
async fn link_code(State(state): State<AppState>, Authenticated(caller): Authenticated) -> Result<Response, ApiError> {
    // 122 random bits from the OS generator, as 32 hex characters: fits a
    // deep-link `start` parameter (at most 64 of [A-Za-z0-9_-]).
    let code = uuid::Uuid::new_v4().simple().to_string();
    let mut tx = state.db.begin().await?;
    sqlx::query(
        "UPDATE telegram_links SET expires_at = now()
          WHERE usuario_id = $1 AND used_at IS NULL AND expires_at > now()",
    )
    .bind(caller.user_id)
    .execute(&mut *tx)
    .await?;
    let (expires_at,): (DateTime<Utc>,) = sqlx::query_as(
        "INSERT INTO telegram_links (code_hash, usuario_id, expires_at)
         VALUES ($1, $2, now() + make_interval(mins => $3)) RETURNING expires_at",
    )
    .bind(code_hash(&code))
    .bind(caller.user_id)
    .bind(CODE_TTL_MINUTES)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    let body = json!({
        "code": code,
        "expires_at": gad_shared::time::format(&expires_at),
        "deep_link": format!("https://t.me/{BOT_USERNAME}?start={code}"),
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[utoipa::path(delete, path = "/api/v1/telegram/link", tag = "telegram",
    responses((status = 200, description = "Unlinked", body = gad_shared::domain::usuario::Usuario), (status = 202, description = "Queued; follow the job", body = crate::openapi::answers::Accepted)))]
async fn unlink_self(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = caller.user_id;
    submit_unlink(&state, &caller, &headers, id).await
}

/// Another usuario's link: nivel 3 only.
#[utoipa::path(delete, path = "/api/v1/telegram/link/{usuario_id}", tag = "telegram",
    params(("usuario_id" = String, Path, pattern = "^(me|[1-9][0-9]{0,17})$", description = "Self, or anyone for nivel 3")),
    responses((status = 200, description = "Unlinked", body = gad_shared::domain::usuario::Usuario), (status = 202, description = "Queued; follow the job", body = crate::openapi::answers::Accepted)))]
async fn unlink(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    Path(usuario_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = target_id(&caller, &usuario_id)?;
    if id != caller.user_id && !caller.is_admin() {
        return Err(ApiError::forbidden());
    }
    submit_unlink(&state, &caller, &headers, id).await
}

async fn submit_unlink(
    state: &AppState,
    caller: &gad_shared::auth::Caller,
    headers: &HeaderMap,
    usuario_id: i64,
) -> Result<Response, ApiError> {
    let prefer =
        Prefer::parse(headers, state.settings.ingress.max_wait, None).map_err(|e| ApiError::validation(vec![e]))?;
    let payload = json!({ "usuario_id": usuario_id });
    queue(state, caller, "telegram.unlink", payload.clone(), payload, prefer).await
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(link_code, unlink_self, unlink))]
pub struct Api;

#[cfg(test)]
mod tests {
    #[test]
    fn the_code_hash_ignores_case_and_surrounding_space() {
        assert_eq!(super::code_hash(" ABCdef \n"), super::code_hash("abcdef"));
        assert_eq!(super::code_hash("abcdef").len(), 32);
    }
}
