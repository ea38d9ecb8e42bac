//! `/api/v1/notifications` (§6.3): a usuario's own notifications, newest
//! first, and acknowledging one. This is what a WebSocket client reloads after
//! `resync_required`.
//!
//! A notification has one row per channel (§2.1). The list shows one item per
//! notification: its WebSocket row, or its Telegram row when it has no other.
//! An acknowledgement, from any channel, covers every row of the notification.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use gad_shared::error_body::FieldError;
use gad_shared::http_error::ApiError;
use serde::Serialize;
use uuid::Uuid;

use crate::caller::Authenticated;
use crate::routes::users::{list_response, pagination};
use crate::state::AppState;
use crate::validate::Params;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/notifications", get(list))
        .route("/api/v1/notifications/{id}/ack", post(ack))
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct NotificationItem {
    pub id: Uuid,
    pub event_id: Uuid,
    pub kind: String,
    pub channel: String,
    pub priority: i16,
    pub tarea_id: Option<i64>,
    /// Rendered title, text and buttons.
    pub payload: serde_json::Value,
    pub status: String,
    #[serde(with = "gad_shared::time::millis")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "gad_shared::time::option_millis")]
    pub sent_at: Option<DateTime<Utc>>,
    #[serde(with = "gad_shared::time::option_millis")]
    pub acked_at: Option<DateTime<Utc>>,
}

const SELECT: &str = "SELECT n.id, n.event_id, n.kind, n.channel, n.priority, n.tarea_id, n.payload,
        n.status::text AS status, n.created_at, n.sent_at,
        (SELECT max(s.acked_at) FROM notifications s
          WHERE s.event_id = n.event_id AND s.recipient_usuario_id = n.recipient_usuario_id) AS acked_at
   FROM notifications n";

/// The rows that stand for a whole notification (see the module doc).
const ONE_PER_NOTIFICATION: &str = "(n.channel = 'websocket' OR NOT EXISTS (
        SELECT 1 FROM notifications w WHERE w.event_id = n.event_id
           AND w.recipient_usuario_id = n.recipient_usuario_id AND w.channel = 'websocket'))";

const UNACKED: &str = "NOT EXISTS (SELECT 1 FROM notifications s WHERE s.event_id = n.event_id
        AND s.recipient_usuario_id = n.recipient_usuario_id AND s.acked_at IS NOT NULL)";

#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications",
    params(("skip" = Option<i64>, Query, minimum = 0, description = "Rows to skip"), ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "At most this many (default 100)"), ("unacked_only" = Option<bool>, Query)),
    responses((status = 200, description = "The caller's own, newest first", body = [NotificationItem], headers(("x-total-count" = i64, description = "Rows matching the filters")))))]
async fn list(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut p = Params::new(&raw);
    let (skip, limit) = pagination(&mut p);
    let mut errors = p.errors;
    let unacked_only = match raw
        .get("unacked_only")
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(_) => {
            errors.push(FieldError::new(
                "unacked_only",
                "invalid_type",
                "unacked_only must be true or false",
            ));
            false
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let filter = format!("n.recipient_usuario_id = $1 AND {ONE_PER_NOTIFICATION} AND (NOT $2 OR {UNACKED})");
    let items: Vec<NotificationItem> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE {filter} ORDER BY n.created_at DESC, n.id DESC OFFSET $3 LIMIT $4"
    )))
    .bind(caller.user_id)
    .bind(unacked_only)
    .bind(skip)
    .bind(limit)
    .fetch_all(&state.db)
    .await?;
    let (total,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM notifications n WHERE {filter}"
    )))
    .bind(caller.user_id)
    .bind(unacked_only)
    .fetch_one(&state.db)
    .await?;
    Ok(list_response(items, total))
}

/// Sets `acked_at` on every row of the caller's notification; repeating it
/// keeps the first time. Someone else's notification is not found.
#[utoipa::path(post, path = "/api/v1/notifications/{id}/ack", tag = "notifications",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "Acknowledged (the first time is kept)", body = NotificationItem)))]
async fn ack(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<NotificationItem>, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found("notification"))?;
    let updated = sqlx::query(
        "UPDATE notifications n
            SET acked_at = COALESCE(n.acked_at, now()),
                status = CASE WHEN n.status IN ('pending', 'sent', 'failed') THEN 'acknowledged'::notification_status
                              ELSE n.status END
           FROM notifications t
          WHERE t.id = $1 AND t.recipient_usuario_id = $2
            AND n.event_id = t.event_id AND n.recipient_usuario_id = t.recipient_usuario_id",
    )
    .bind(id)
    .bind(caller.user_id)
    .execute(&state.db)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(ApiError::not_found("notification"));
    }
    let item: Option<NotificationItem> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE n.id = $1")))
        .bind(id)
        .fetch_optional(&state.db)
        .await?;
    item.map(Json).ok_or_else(|| ApiError::not_found("notification"))
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, ack))]
pub struct Api;
