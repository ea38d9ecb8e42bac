//! `POST /api/v1/telegram/webhook` (§6.3), webhook mode only. Kept thin:
//! check Telegram's secret header, read the `update_id`, publish the update
//! unchanged to `GAD_TELEGRAM` with `Nats-Msg-Id` = `update_id`, and answer
//! 200 only once the stream has stored it. The stream drops an update
//! Telegram delivers again (within its duplicate window), and the
//! broadcaster's bot consumes the stream with the same handlers as long
//! polling. Without a configured secret the route does not exist (404).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use gad_shared::error_body::FieldError;
use gad_shared::http_error::ApiError;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::state::AppState;

pub const PATH: &str = "/api/v1/telegram/webhook";
/// The header Telegram sends the `secret_token` given to `setWebhook` in.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

pub fn router() -> Router<AppState> {
    Router::new().route(PATH, post(webhook))
}

/// Only what ingress reads; the rest is the bot's business.
#[derive(Deserialize)]
struct Head {
    update_id: i64,
}

#[utoipa::path(post, path = "/api/v1/telegram/webhook", tag = "telegram",
    params(("X-Telegram-Bot-Api-Secret-Token" = String, Header, description = "The secret given to setWebhook")),
    request_body(content = Object, description = "A Telegram Update"),
    responses((status = 200, description = "Stored in GAD_TELEGRAM (or already there)"),
        (status = 401, description = "Missing or wrong secret token"),
        (status = 404, description = "Webhook mode is off"),
        (status = 503, description = "NATS did not store it; Telegram delivers it again")))]
async fn webhook(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<StatusCode, ApiError> {
    let Some(secret) = state.settings.ingress.telegram_webhook_secret.as_ref() else {
        // Said plainly, so an operator who set up the webhook sees why.
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "webhook mode is off (no ingress.telegram_webhook_secret)",
        ));
    };
    let given = headers.get(SECRET_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    if !same_secret(given, secret.expose().as_bytes()) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong secret token",
        ));
    }
    let head: Head = serde_json::from_slice(&body).map_err(|_| {
        ApiError::validation(vec![FieldError::new(
            "update_id",
            "required",
            "a Telegram update with an integer update_id",
        )])
    })?;
    let nats = &state.nats;
    let mut message_headers = async_nats::HeaderMap::new();
    message_headers.insert("Nats-Msg-Id", head.update_id.to_string().as_str());
    message_headers.insert("Content-Type", "application/json");
    let subject = nats.topology.telegram_updates_subject();
    let timeout = state.settings.nats.publish_timeout;
    let stored = tokio::time::timeout(timeout, async {
        nats.js
            .publish_with_headers(subject, message_headers, body)
            .await?
            .await
            .map_err(async_nats::Error::from)
    })
    .await;
    match stored {
        Ok(Ok(_)) => Ok(StatusCode::OK),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, update_id = head.update_id, "telegram update not stored");
            Err(ApiError::dependency_unavailable("nats"))
        }
        Err(_) => {
            tracing::warn!(
                update_id = head.update_id,
                "telegram update not stored within nats.publish_timeout"
            );
            Err(ApiError::dependency_unavailable("nats"))
        }
    }
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(webhook))]
pub struct Api;

/// Compares digests, so the time taken says nothing about the secret.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_match_only_exactly() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3cre", b"s3cret"));
        assert!(!same_secret(b"", b"s3cret"));
    }
}
