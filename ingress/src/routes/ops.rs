//! `GET /api/v1/admin/ops` (nivel 3): the operators' view of the pipeline.
//! Each figure comes from where it lives (consumer lag and DLQ size from
//! JetStream, jobs and Telegram deliveries from PostgreSQL, connections from
//! the broadcaster) and is `null` when that source does not answer in time:
//! operators need this view most when something is down.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::routing::get;
use axum::{Json, Router};
use gad_shared::http_error::ApiError;
use serde_json::{Value, json};

use crate::caller::Authenticated;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/admin/ops", get(ops))
}

#[utoipa::path(get, path = "/api/v1/admin/ops", tag = "admin",
    responses((status = 200, description = "The operators' view (nivel 3)", body = crate::openapi::answers::OpsView)))]
async fn ops(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden());
    }
    let nats_timeout = state.settings.nats.publish_timeout;
    let (lag, dlq, jobs, telegram, ws) = tokio::join!(
        consumer_lag(&state, nats_timeout),
        dlq_size(&state, nats_timeout),
        jobs_by_status_and_kind(&state),
        telegram_deliveries(&state),
        websocket_stats(&state, &headers),
    );
    Ok(Json(json!({
        "consumer_lag": lag,
        "jobs": jobs,
        "dlq": dlq,
        "websocket": ws,
        "telegram": telegram,
        "generated_at": gad_shared::time::format(&chrono::Utc::now()),
    })))
}

/// `Some` when `f` finished within `limit` with a value; the cause of a
/// `None` is logged, since the body only says `null`.
async fn within<T, E: std::fmt::Display>(
    what: &str,
    limit: Duration,
    f: impl Future<Output = Result<T, E>>,
) -> Option<T> {
    match tokio::time::timeout(limit, f).await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            tracing::warn!(source = what, error = %e, "ops figure unavailable");
            None
        }
        Err(_) => {
            tracing::warn!(source = what, ?limit, "ops figure timed out");
            None
        }
    }
}

/// Per worker group: messages not yet delivered and delivered but unacknowledged.
async fn consumer_lag(state: &AppState, limit: Duration) -> Value {
    let Some(lags) = gad_shared::lag::read(&state.publisher, &state.nats.topology, limit).await else {
        tracing::warn!(?limit, "ops figure unavailable: consumer lag");
        return Value::Null;
    };
    let groups = lags
        .into_iter()
        .map(|(group, lag)| {
            let figures = lag.map_or(Value::Null, |l| {
                json!({
                    "pending": l.pending,
                    "ack_pending": l.ack_pending,
                    "lag": l.backlog(),
                    "redelivered": l.redelivered,
                })
            });
            (group.to_string(), figures)
        })
        .collect();
    Value::Object(groups)
}

async fn dlq_size(state: &AppState, limit: Duration) -> Value {
    let name = state.nats.topology.dlq_stream();
    let info = within("dlq stream", limit, async {
        let mut stream = state.nats.js.get_stream(name).await?;
        stream.info().await.cloned().map_err(async_nats::Error::from)
    })
    .await;
    info.map_or(
        Value::Null,
        |i| json!({ "messages": i.state.messages, "bytes": i.state.bytes }),
    )
}

/// `{by_status: {status: n}, by_kind: {kind: {status: n}}}`; the
/// statement timeout of the ingress pool bounds it.
async fn jobs_by_status_and_kind(state: &AppState) -> Value {
    let rows: Option<Vec<(String, String, i64)>> = within(
        "jobs table",
        state.settings.postgres.statement_timeout,
        sqlx::query_as("SELECT kind, status::text, count(*) FROM jobs GROUP BY kind, status").fetch_all(&state.db),
    )
    .await;
    let Some(rows) = rows else { return Value::Null };
    let mut by_status: BTreeMap<String, i64> = BTreeMap::new();
    let mut by_kind: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for (kind, status, n) in rows {
        *by_status.entry(status.clone()).or_default() += n;
        *by_kind.entry(kind).or_default().entry(status).or_default() += n;
    }
    json!({ "by_status": by_status, "by_kind": by_kind })
}

/// Telegram rows of the notifications outbox, by delivery status.
async fn telegram_deliveries(state: &AppState) -> Value {
    let rows: Option<Vec<(String, i64)>> = within(
        "notifications table",
        state.settings.postgres.statement_timeout,
        sqlx::query_as("SELECT status::text, count(*) FROM notifications WHERE channel = 'telegram' GROUP BY status")
            .fetch_all(&state.db),
    )
    .await;
    let Some(rows) = rows else { return Value::Null };
    let by_status: BTreeMap<String, i64> = rows.into_iter().collect();
    let total: i64 = by_status.values().sum();
    json!({ "by_status": by_status, "total": total })
}

/// The broadcaster's own counters (`/ws/stats`), asked with the caller's
/// token: the broadcaster checks nivel 3 itself.
async fn websocket_stats(state: &AppState, headers: &HeaderMap) -> Value {
    let cfg = &state.settings.ingress;
    let Some(url) = cfg.broadcaster_stats_url.as_deref() else {
        return Value::Null;
    };
    let mut request = state.http.get(url);
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        request = request.header(header::AUTHORIZATION, auth.clone());
    }
    let answer = within("broadcaster", cfg.ops_timeout, async {
        request.send().await?.error_for_status()?.json::<Value>().await
    })
    .await;
    answer.unwrap_or(Value::Null)
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(ops))]
pub struct Api;
