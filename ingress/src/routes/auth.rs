//! `/api/v1/auth` (§6.2): login (in [`super::login`]), logout and refresh.
//! Direct, not queued: the login counters and the logout denylist are auth
//! bookkeeping.

use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use gad_shared::auth::{AuthError, Revocations};
use gad_shared::http_error::ApiError;
use serde::Serialize;

use crate::caller::Authenticated;
use crate::routes::direct_audit::{self, DirectAudit};
use crate::routes::login::login;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/auth/refresh", post(refresh))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// `bearer`
    pub token_type: &'static str,
    pub expires_in: u64,
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 200, description = "The token's jti is denylisted", body = crate::openapi::answers::LoggedOut)))]
async fn logout(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let bucket = state
        .nats
        .revocation_bucket()
        .ok_or_else(|| ApiError::dependency_unavailable("nats"))?;
    let value = serde_json::json!({ "exp": caller.expires_at }).to_string();
    bucket
        .put(Revocations::jti_key(&caller.jti), value.into())
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "logout not recorded");
            ApiError::dependency_unavailable("nats")
        })?;
    direct_audit::record(
        &state.db,
        &headers,
        DirectAudit::new("logout", Some(caller.user_id), Some(caller.user_id)),
    )
    .await;
    Ok(Json(serde_json::json!({ "status": "logged_out" })))
}

/// A fresh token for the same usuario, at its current nivel, while it is active.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth",
    responses((status = 200, description = "A fresh token for the same usuario", body = TokenResponse)))]
async fn refresh(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<TokenResponse>, ApiError> {
    let row: Option<(i16, i64)> = sqlx::query_as(
        "SELECT nivel, ceil(extract(epoch FROM tokens_validos_desde))::bigint
         FROM usuarios WHERE id = $1 AND deleted_at IS NULL AND verificado",
    )
    .bind(caller.user_id)
    .fetch_optional(&state.db)
    .await?;
    let (nivel, valid_since) = row.ok_or(AuthError::Revoked)?;
    wait_until(valid_since).await;
    issue(&state, caller.user_id, nivel)
}

pub fn issue(state: &AppState, usuario_id: i64, nivel: i16) -> Result<Json<TokenResponse>, ApiError> {
    let nivel = u8::try_from(nivel).map_err(ApiError::internal)?;
    let (access_token, expires_in) = state.issuer.issue(usuario_id, nivel).map_err(ApiError::internal)?;
    Ok(Json(TokenResponse {
        access_token,
        token_type: "bearer",
        expires_in,
    }))
}

/// Revocation bumps round `tokens_validos_desde` up to the next whole second
/// (tokens compare in whole seconds, so a token from the same second as the
/// bump must die too). A token issued right after a bump therefore waits for
/// that second to begin, or it would be born revoked. At most about a second.
pub async fn wait_until(valid_since: i64) {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let due_ms = valid_since.saturating_mul(1000);
    if due_ms > now_ms {
        let ms = (due_ms - now_ms).min(2_000) as u64;
        tokio::time::sleep(Duration::from_millis(ms + 5)).await;
    }
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(crate::routes::login::login, logout, refresh))]
pub struct Api;
