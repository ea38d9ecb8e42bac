//! Liveness and readiness (§6.3): NATS is the only hard dependency of ingress.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;

#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "Liveness only", body = crate::openapi::answers::Live)), security(()))]
pub async fn live(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "environment": state.settings.environment.as_str(),
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }))
}

#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses((status = 200, description = "Ready (`ok`, or `degraded` with a soft dependency down)", body = crate::openapi::answers::Readiness),
        (status = 503, description = "NATS down (`not_ready`) or shutting down (`draining`)", body = crate::openapi::answers::Readiness)),
    security(()))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let check = Duration::from_secs(1);
    let nats = if state.nats.ready() {
        Ok(())
    } else {
        Err("not connected".to_string())
    };
    let pg = tokio::time::timeout(check, sqlx::query("SELECT 1").execute(&state.db))
        .await
        .map_err(|_| "timeout".to_string())
        .and_then(|r| r.map(|_| ()).map_err(|e| e.to_string()));
    let redis = tokio::time::timeout(check, state.redis.ping())
        .await
        .map_err(|_| "timeout".to_string())
        .and_then(|r| r);
    let show = |r: &Result<(), String>| match r {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("error: {e}"),
    };
    let checks = json!({ "nats": show(&nats), "postgres": show(&pg), "redis": show(&redis) });
    let (code, status) = if state.draining.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else if nats.is_err() {
        (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
    } else if pg.is_err() || redis.is_err() {
        (StatusCode::OK, "degraded")
    } else {
        (StatusCode::OK, "ok")
    };
    let mut response = (code, Json(json!({ "status": status, "checks": checks }))).into_response();
    if code == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    }
    response
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(live, ready))]
pub struct Api;
