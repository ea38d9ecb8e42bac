//! `GET /api/v1/geo/map/view` (§5): validated here, run by the `geo` lane.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use gad_shared::domain::efectivo::DISPONIBILIDADES;
use gad_shared::error_body::FieldError;
use gad_shared::http_error::{ApiError, current_request_id};
use serde_json::json;

use crate::caller::{Authenticated, require_supervisor};
use crate::job_answer::submit_and_answer;
use crate::prefer::Prefer;
use crate::state::AppState;
use crate::submit::NewJob;
use crate::validate::Params;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/geo/map/view", get(view))
}

#[utoipa::path(get, path = "/api/v1/geo/map/view", tag = "geo",
    params(("center_lat" = f64, Query, minimum = -90, maximum = 90),
        ("center_lng" = f64, Query, minimum = -180, maximum = 180),
        ("radius_m" = Option<i64>, Query, minimum = 100, maximum = 100000, description = "Default 10000"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 2000, description = "Default 500"),
        ("disponibilidad" = Option<String>, Query, pattern = "^(disponible|en_tarea|fuera_servicio|no_disponible)$")),
    responses((status = 200, description = "Tareas and efectivos around the centre (nivel ≥ 2)", body = crate::openapi::answers::MapView),
        (status = 202, description = "Queued; follow the job", body = crate::openapi::answers::Accepted)))]
async fn view(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    require_supervisor(&caller)?;
    let mut p = Params::new(&raw);
    let center_lat = p.number("center_lat", true, -90.0, 90.0);
    let center_lng = p.number("center_lng", true, -180.0, 180.0);
    let radius_m = p.integer("radius_m", false, 100, 100_000).unwrap_or(10_000);
    let limit = p.integer("limit", false, 1, 2000).unwrap_or(500);
    let disponibilidad = raw.get("disponibilidad").map(|s| s.trim()).filter(|s| !s.is_empty());
    if disponibilidad.is_some_and(|d| !DISPONIBILIDADES.contains(&d)) {
        p.errors.push(FieldError::new(
            "disponibilidad",
            "invalid_choice",
            format!("disponibilidad must be one of {}", DISPONIBILIDADES.join(", ")),
        ));
    }
    let prefer = Prefer::parse(
        &headers,
        state.settings.ingress.max_wait,
        Some(crate::routes::LEGACY_WAIT_S),
    );
    if let Err(e) = &prefer {
        p.errors.push(e.clone());
    }
    let (Some(center_lat), Some(center_lng), Ok(prefer), true) = (center_lat, center_lng, prefer, p.errors.is_empty())
    else {
        return Err(ApiError::validation(p.errors));
    };
    let payload = json!({
        "center_lat": center_lat, "center_lng": center_lng, "radius_m": radius_m, "limit": limit,
        "disponibilidad": disponibilidad,
    });
    let job = NewJob {
        job_id: uuid::Uuid::now_v7(),
        kind: "geo.map_view",
        summary: payload.clone(),
        payload,
        request_id: current_request_id(),
    };
    submit_and_answer(&state, &caller, job, prefer).await
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(view))]
pub struct Api;
