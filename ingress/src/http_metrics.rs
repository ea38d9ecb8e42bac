//! `http_requests_total` and `http_request_duration_seconds` (§6.5; alert
//! rules already use them), labelled with the route template, never the raw
//! path: ids in paths would make one series per resource.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// Counts a request in flight until dropped, so a request cancelled
/// mid-way (client gone, deadline) is not counted for ever.
struct InFlight;

impl InFlight {
    fn start() -> Self {
        metrics::gauge!(gad_shared::metric_names::HTTP_IN_FLIGHT).increment(1.0);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!(gad_shared::metric_names::HTTP_IN_FLIGHT).decrement(1.0);
    }
}

pub async fn layer(req: Request, next: Next) -> Response {
    let _in_flight = InFlight::start();
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!(gad_shared::metric_names::HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(gad_shared::metric_names::HTTP_REQUEST_DURATION, &labels)
        .record(started.elapsed().as_secs_f64());
    response
}
