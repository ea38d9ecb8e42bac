//! The public router.

pub mod admin;
pub mod auth;
pub mod board;
pub mod direct_audit;
pub mod dlq;
pub mod efectivos;
pub mod emergency;
pub mod geo;
pub mod health;
pub mod jobs;
pub mod legacy;
pub mod login;
pub mod map;
pub mod notifications;
pub mod ops;
pub mod stats;
pub mod tasks;
pub mod telegram_link;
pub mod telegram_webhook;
pub mod user_jobs;
pub mod users;

use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gad_shared::http_error::{ApiError, request_id_layer};

use crate::prefer::Prefer;
use crate::state::AppState;

/// Request bodies above this are refused with 413 (§6.4).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// How long the endpoints kept from the original system wait without `Prefer` (QW, §6.1).
pub const LEGACY_WAIT_S: u64 = 5;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/api/v1/geo/nearest", get(geo::nearest))
        .route("/api/v1/jobs/{id}", get(jobs::get_job))
        .merge(auth::router())
        .merge(users::router())
        .merge(notifications::router())
        .merge(telegram_link::router())
        .merge(telegram_webhook::router())
        .merge(admin::router())
        .merge(ops::router())
        .merge(dlq::router())
        .merge(legacy::router())
        .merge(efectivos::router())
        .merge(emergency::router())
        .merge(map::router())
        .merge(tasks::router())
        .merge(stats::router())
        .merge(jobs::router())
        .merge(crate::openapi::router())
        .merge(board::router(&state.settings.ingress.board))
        .route_layer(middleware::from_fn(crate::http_metrics::layer))
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "bad_request", "method not allowed")
        })
        .layer(middleware::from_fn(crate::negotiation::layer))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(crate::idempotency::layer))
        .layer(middleware::from_fn_with_state(state.clone(), crate::rate_limit::layer))
        .layer(middleware::from_fn_with_state(state.clone(), crate::client::layer))
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(middleware::from_fn_with_state(
            crate::shedding::Shedder::new(state.settings.ingress.shedding),
            crate::shedding::layer,
        ))
        .layer(middleware::from_fn(gad_shared::trace_context::layer))
        .layer(middleware::from_fn(request_id_layer))
        .layer(middleware::from_fn(crate::hygiene::security_headers))
        .layer(tower::util::option_layer(crate::hygiene::cors(
            &state.settings.ingress.cors_allowed_origins,
        )))
        .with_state(state)
}

/// End-to-end deadline: `max(request_timeout, wait + 2 s)` (architecture.md).
async fn deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let cfg = &state.settings.ingress;
    let wait = Prefer::parse(req.headers(), cfg.max_wait, None)
        .ok()
        .and_then(|p| p.wait)
        .unwrap_or(0);
    let limit = cfg.request_timeout.max(Duration::from_secs(wait + 2));
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "dependency_unavailable",
            "the request timed out",
        )
        .with_details(serde_json::json!({ "dependency": "timeout" }))
        .retry_after(2)
        .into_response(),
    }
}
