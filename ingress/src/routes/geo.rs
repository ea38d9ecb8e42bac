//! `GET /api/v1/geo/nearest` (§4): validated here, run by the `geo` lane.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use gad_shared::http_error::{ApiError, current_request_id};
use serde_json::json;

use crate::caller::{Authenticated, require_supervisor};
use crate::job_answer::submit_and_answer;
use crate::prefer::Prefer;
use crate::state::AppState;
use crate::submit::NewJob;
use crate::validate::Params;

#[utoipa::path(get, path = "/api/v1/geo/nearest", tag = "geo",
    params(("lat" = f64, Query, minimum = -90, maximum = 90), ("lng" = f64, Query, minimum = -180, maximum = 180),
        ("k" = Option<i64>, Query, minimum = 1, maximum = 50, description = "Default 5"),
        ("radius_m" = Option<i64>, Query, minimum = 100, maximum = 100000, description = "No limit when absent")),
    responses((status = 200, description = "Available units, nearest first (nivel ≥ 2)", body = crate::openapi::answers::Nearest),
        (status = 202, description = "Queued; follow the job", body = crate::openapi::answers::Accepted)))]
pub async fn nearest(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    require_supervisor(&caller)?;
    let mut p = Params::new(&raw);
    let lat = p.number("lat", true, -90.0, 90.0);
    let lng = p.number("lng", true, -180.0, 180.0);
    let k = p.integer("k", false, 1, 50);
    let radius_m = p.integer("radius_m", false, 100, 100_000);
    let prefer = Prefer::parse(&headers, state.settings.ingress.max_wait, None);
    if let Err(e) = &prefer {
        p.errors.push(e.clone());
    }
    let (Some(lat), Some(lng), Ok(prefer)) = (lat, lng, prefer) else {
        return Err(ApiError::validation(p.errors));
    };
    if !p.errors.is_empty() {
        return Err(ApiError::validation(p.errors));
    }
    let payload = json!({ "lat": lat, "lng": lng, "k": k.unwrap_or(5), "radius_m": radius_m });
    let job = NewJob {
        job_id: uuid::Uuid::now_v7(),
        kind: "geo.nearest",
        summary: payload.clone(),
        payload,
        request_id: current_request_id(),
    };
    submit_and_answer(&state, &caller, job, prefer).await
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(nearest))]
pub struct Api;
