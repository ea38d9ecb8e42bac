//! Liveness and readiness of a worker process: NATS and PostgreSQL are hard
//! dependencies, Redis is soft.

use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use gad_shared::redis_conn::Redis;
use gad_shared::settings::Environment;
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct HealthState {
    pub environment: Environment,
    pub nats: async_nats::Client,
    pub db: sqlx::PgPool,
    pub redis: Redis,
    pub draining: CancellationToken,
}

pub fn router(state: HealthState) -> Router {
    Router::new()
        .route("/health", get(live))
        .route("/health/ready", get(ready))
        .with_state(state)
}

async fn live(State(s): State<HealthState>) -> Json<serde_json::Value> {
    Json(
        json!({ "status": "ok", "environment": s.environment.as_str(), "timestamp": gad_shared::time::format(&chrono::Utc::now()) }),
    )
}

async fn ready(State(s): State<HealthState>) -> Response {
    let limit = Duration::from_secs(1);
    let nats = if s.nats.connection_state() == async_nats::connection::State::Connected {
        Ok(())
    } else {
        Err("not connected".to_string())
    };
    let pg = tokio::time::timeout(limit, sqlx::query("SELECT 1").execute(&s.db))
        .await
        .map_err(|_| "timeout".to_string())
        .and_then(|r| r.map(|_| ()).map_err(|e| e.to_string()));
    let redis = tokio::time::timeout(limit, s.redis.ping())
        .await
        .map_err(|_| "timeout".to_string())
        .and_then(|r| r);
    let show = |r: &Result<(), String>| {
        r.as_ref()
            .map(|_| "ok".to_string())
            .unwrap_or_else(|e| format!("error: {e}"))
    };
    let checks = json!({ "nats": show(&nats), "postgres": show(&pg), "redis": show(&redis) });
    let (code, status) = if s.draining.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else if nats.is_err() || pg.is_err() {
        (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
    } else if redis.is_err() {
        (StatusCode::OK, "degraded")
    } else {
        (StatusCode::OK, "ok")
    };
    let mut r = (code, Json(json!({ "status": status, "checks": checks }))).into_response();
    if code == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    }
    r
}
