//! Load shedding per instance (issue: ingress at the edge). Up to `soft`
//! requests run at once; up to `hard` in all may be in the building, the ones
//! past `soft` waiting briefly for a turn; beyond `hard`, or after the wait,
//! a request gets 503 at once. A flood thus costs a refusal each, while the
//! requests already admitted keep their latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gad_shared::http_error::ApiError;
use serde::Deserialize;
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SheddingSettings {
    /// Requests served at once.
    pub soft_limit: usize,
    /// Requests served or waiting; past it, 503 at once.
    pub hard_limit: usize,
    /// Longest wait of a request past the soft limit.
    #[serde(with = "humantime_serde")]
    pub queue_timeout: Duration,
}

impl Default for SheddingSettings {
    fn default() -> Self {
        // The original deployment's limits.
        Self {
            soft_limit: 800,
            hard_limit: 1000,
            queue_timeout: Duration::from_millis(200),
        }
    }
}

#[derive(Clone)]
pub struct Shedder {
    running: Arc<Semaphore>,
    admitted: Arc<AtomicUsize>,
    settings: SheddingSettings,
}

impl Shedder {
    pub fn new(settings: SheddingSettings) -> Self {
        let soft = settings.soft_limit.max(1);
        Self {
            running: Arc::new(Semaphore::new(soft)),
            admitted: Arc::new(AtomicUsize::new(0)),
            settings: SheddingSettings {
                soft_limit: soft,
                hard_limit: settings.hard_limit.max(soft),
                ..settings
            },
        }
    }
}

/// Counts a request in the building until dropped (answered or abandoned).
struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

pub async fn layer(State(shedder): State<Shedder>, req: Request, next: Next) -> Response {
    // Probes must tell "busy" from "dead": an orchestrator would restart a
    // replica whose liveness check was shed.
    if req.uri().path().starts_with("/health") {
        return next.run(req).await;
    }
    if shedder.admitted.fetch_add(1, Ordering::AcqRel) >= shedder.settings.hard_limit {
        shedder.admitted.fetch_sub(1, Ordering::AcqRel);
        return overloaded("hard");
    }
    let _admitted = Admitted(shedder.admitted.clone());
    let permit = match shedder.running.clone().try_acquire_owned() {
        Ok(p) => p,
        Err(_) => {
            match tokio::time::timeout(shedder.settings.queue_timeout, shedder.running.clone().acquire_owned()).await {
                Ok(Ok(p)) => p,
                _ => return overloaded("queue_timeout"),
            }
        }
    };
    let response = next.run(req).await;
    drop(permit);
    response
}

fn overloaded(reason: &'static str) -> Response {
    metrics::counter!(gad_shared::metric_names::HTTP_SHED, "reason" => reason).increment(1);
    // §7 has no code of its own for this; `queue_full` tells a client the
    // same thing (retry after the pause), `details.limit` which limit it was.
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "queue_full",
        "the server is at capacity; try again shortly",
    )
    .with_details(serde_json::json!({ "limit": reason }))
    .retry_after(1)
    .into_response()
}
