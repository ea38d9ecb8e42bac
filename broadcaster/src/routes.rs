//! HTTP routes of the broadcaster.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gad_shared::http_error::{ApiError, request_id_layer};
use gad_shared::settings::Environment;
use serde_json::json;

use crate::state::AppState;
use crate::ws::connection;

pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    // The test broadcast does not exist in production (404 there).
    if state.settings.environment != Environment::Production {
        router = router.route("/ws/_test/broadcast", post(crate::test_broadcast::broadcast));
    }
    router
        .route("/ws/connect", get(connection::connect))
        .route("/ws/stats", get(stats))
        .route("/health", get(live))
        .route("/health/ready", get(ready))
        .fallback(|| async { ApiError::not_found("route") })
        .layer(axum::middleware::from_fn(request_id_layer))
        .with_state(state)
}

async fn live(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(
        json!({ "status": "ok", "environment": state.settings.environment.as_str(), "timestamp": gad_shared::time::format(&chrono::Utc::now()) }),
    )
}

async fn ready(State(state): State<AppState>) -> Response {
    let nats_ok = state.nats.connection_state() == async_nats::connection::State::Connected;
    let (code, status) = match (state.draining.is_cancelled(), nats_ok) {
        (true, _) => (StatusCode::SERVICE_UNAVAILABLE, "draining"),
        (false, false) => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
        (false, true) => (StatusCode::OK, "ok"),
    };
    let checks = json!({ "nats": if nats_ok { "ok".to_string() } else { "error: not connected".to_string() } });
    let mut r = (code, Json(json!({ "status": status, "checks": checks }))).into_response();
    if code != StatusCode::OK {
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    }
    r
}

/// Node counters for administrators (nivel 3).
async fn stats(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or(gad_shared::auth::AuthError::Missing)?;
    let caller = state.verifier.verify(token)?;
    if !caller.is_admin() {
        return Err(ApiError::forbidden());
    }
    Ok(Json(state.hub.stats()))
}
