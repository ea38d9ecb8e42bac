//! Direct reads: the list with its filters, one tarea, its history.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use gad_shared::domain::tarea::{self, ESTADOS, ListFilter, TIPOS};
use gad_shared::error_body::FieldError;
use gad_shared::http_error::ApiError;
use serde_json::{Map, Value};

use super::{own_for, tarea_id};
use crate::caller::Authenticated;
use crate::state::AppState;
use crate::validate::{Fields, Params};

#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks",
    params(("skip" = Option<i64>, Query, minimum = 0, description = "Rows to skip"), ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "At most this many (default 100)"),
        ("estado" = Option<Vec<String>>, Query, description = "Repeatable (or comma-separated): programada, en_curso, pausada, finalizada, cancelada"),
        ("tipo" = Option<String>, Query, pattern = "^(patrullaje|investigacion|vigilancia|intervencion|administrativa|entrenamiento|emergencia)$"),
        ("prioridad_min" = Option<i16>, Query, minimum = 1, maximum = 5),
        ("delegado_usuario_id" = Option<i64>, Query, minimum = 1),
        ("efectivo_id" = Option<i64>, Query, minimum = 1),
        ("codigo" = Option<String>, Query, max_length = 20),
        ("desde" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "created_at ≥, RFC 3339 with an offset"),
        ("hasta" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "created_at <, RFC 3339 with an offset"),
        ("q" = Option<String>, Query, max_length = 200, description = "In codigo or titulo")),
    responses((status = 200, description = "Newest first; nivel 1 sees its own only", body = [gad_shared::domain::tarea::Tarea], headers(("x-total-count" = i64, description = "Rows matching the filters")))))]
pub async fn list(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let raw: HashMap<String, String> = pairs.iter().cloned().collect();
    let mut p = Params::new(&raw);
    let skip = p.integer("skip", false, 0, i64::MAX).unwrap_or(0);
    let limit = p.integer("limit", false, 1, 500).unwrap_or(100);
    let prioridad_min = p
        .integer("prioridad_min", false, 1, 5)
        .and_then(|v| i16::try_from(v).ok());
    let delegado_usuario_id = p.integer("delegado_usuario_id", false, 1, i64::MAX);
    let efectivo_id = p.integer("efectivo_id", false, 1, i64::MAX);
    let mut estados = Vec::new();
    for (_, v) in pairs.iter().filter(|(k, _)| k == "estado") {
        // `estado=a,b` is accepted as well as the repeated parameter.
        for e in v.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if ESTADOS.contains(&e) {
                estados.push(e.to_string());
            } else {
                p.errors.push(choice_error("estado", &ESTADOS));
            }
        }
    }
    let tipo = text(&raw, "tipo");
    if tipo.as_deref().is_some_and(|t| !TIPOS.contains(&t)) {
        p.errors.push(choice_error("tipo", &TIPOS));
    }
    let desde = query_timestamp(&raw, "desde", &mut p.errors);
    let hasta = query_timestamp(&raw, "hasta", &mut p.errors);
    let q = text(&raw, "q");
    if q.as_deref().is_some_and(|q| q.chars().count() > 200) {
        p.errors.push(FieldError::new(
            "q",
            "invalid_length",
            "q must have at most 200 characters",
        ));
    }
    if !p.errors.is_empty() {
        return Err(ApiError::validation(p.errors));
    }
    let filter = ListFilter {
        estados,
        tipo,
        prioridad_min,
        delegado_usuario_id,
        efectivo_id,
        codigo: text(&raw, "codigo").map(|c| tarea::normalize_codigo(&c)),
        desde,
        hasta,
        q,
        own_for: own_for(&caller),
    };
    let (rows, total) = tarea::list(&state.db, &filter, skip, limit).await?;
    let mut response = Json(rows).into_response();
    response.headers_mut().insert("x-total-count", HeaderValue::from(total));
    Ok(response)
}

fn text(raw: &HashMap<String, String>, field: &str) -> Option<String> {
    raw.get(field).map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn choice_error(field: &str, allowed: &[&str]) -> FieldError {
    FieldError::new(
        field,
        "invalid_choice",
        format!("{field} must be one of {}", allowed.join(", ")),
    )
}

/// RFC 3339 with an offset, as in bodies (§ conventions).
fn query_timestamp(
    raw: &HashMap<String, String>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let value = text(raw, field)?;
    let body = Map::from_iter([(field.to_string(), Value::String(value))]);
    let mut f = Fields::new(&body);
    let parsed = f.timestamp(field, false);
    errors.append(&mut f.errors);
    parsed
}

#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "tasks", params(("id" = i64, Path, minimum = 1, description = "Tarea id")),
    responses((status = 200, description = "The tarea (nivel 1: its own)", body = gad_shared::domain::tarea::Tarea)))]
pub async fn get_one(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = tarea_id(&id)?;
    let found = tarea::find_visible(&state.db, id, own_for(&caller)).await?;
    Ok(Json(found.ok_or_else(|| ApiError::not_found("tarea"))?).into_response())
}

#[utoipa::path(get, path = "/api/v1/tasks/{id}/history", tag = "tasks", params(("id" = i64, Path, minimum = 1, description = "Tarea id")),
    responses((status = 200, description = "State changes, oldest first", body = [gad_shared::domain::tarea::HistorialEntry])))]
pub async fn history(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = tarea_id(&id)?;
    if tarea::find_visible(&state.db, id, own_for(&caller)).await?.is_none() {
        return Err(ApiError::not_found("tarea"));
    }
    Ok(Json(tarea::history(&state.db, id).await?).into_response())
}
