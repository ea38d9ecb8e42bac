//! `/api/v1/efectivos` (§5, §6.3): reads are direct; every write is a job on
//! the `tasks` lane, whose worker checks ownership against the current rows.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use gad_shared::auth::Caller;
use gad_shared::domain::efectivo::{self, DISPONIBILIDADES, Efectivo};
use gad_shared::error_body::FieldError;
use gad_shared::http_error::{ApiError, current_request_id};
use serde_json::{Map, Value, json};
use sqlx::{Postgres, QueryBuilder};

use crate::body::JsonObject;
use crate::caller::{Authenticated, require_supervisor};
use crate::job_answer::submit_and_answer;
use crate::prefer::Prefer;
use crate::state::AppState;
use crate::submit::NewJob;
use crate::validate::{Fields, Params};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/efectivos", get(list).post(create))
        .route("/api/v1/efectivos/me", get(me))
        .route("/api/v1/efectivos/{id}", get(one).put(update).delete(remove))
        .route("/api/v1/efectivos/{id}/location", put(location))
        .route("/api/v1/efectivos/{id}/disponibilidad", put(disponibilidad))
}

/// `^[A-Z0-9_-]{2,50}$` after upper-casing (§7).
pub fn is_valid_codigo_interno(v: &str) -> bool {
    (2..=50).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn upper(v: &str) -> String {
    v.trim().to_uppercase()
}

/// Ids in paths are positive integers; anything else names no efectivo.
fn path_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::not_found("efectivo"))
}

#[utoipa::path(get, path = "/api/v1/efectivos", tag = "efectivos",
    params(("skip" = Option<i64>, Query, minimum = 0, description = "Rows to skip"), ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "At most this many (default 100)"),
        ("disponibilidad" = Option<String>, Query, pattern = "^(disponible|en_tarea|fuera_servicio|no_disponible)$"),
        ("unidad" = Option<String>, Query, max_length = 100), ("q" = Option<String>, Query, max_length = 100,
        description = "In codigo_interno or the usuario's name")),
    responses((status = 200, description = "Ordered by id (nivel ≥ 2)", body = [Efectivo], headers(("x-total-count" = i64, description = "Rows matching the filters")))))]
async fn list(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    require_supervisor(&caller)?;
    let mut p = Params::new(&raw);
    let skip = p.integer("skip", false, 0, i64::MAX).unwrap_or(0);
    let limit = p.integer("limit", false, 1, 500).unwrap_or(100);
    let disponibilidad = raw.get("disponibilidad").map(|s| s.trim()).filter(|s| !s.is_empty());
    if let Some(d) = disponibilidad
        && !DISPONIBILIDADES.contains(&d)
    {
        p.errors.push(FieldError::new(
            "disponibilidad",
            "invalid_choice",
            format!("disponibilidad must be one of {}", DISPONIBILIDADES.join(", ")),
        ));
    }
    let unidad = raw
        .get("unidad")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let q = raw.get("q").map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    for (field, value, max) in [("unidad", &unidad, 100), ("q", &q, 100)] {
        if value.as_ref().is_some_and(|v| v.chars().count() > max) {
            p.errors.push(FieldError::new(
                field,
                "invalid_length",
                format!("{field} must have at most {max} characters"),
            ));
        }
    }
    if !p.errors.is_empty() {
        return Err(ApiError::validation(p.errors));
    }
    let filter = ListFilter {
        disponibilidad: disponibilidad.map(str::to_string),
        unidad,
        q,
    };
    let mut count = QueryBuilder::<Postgres>::new("SELECT count(*) FROM efectivos e");
    filter.push(&mut count);
    let total: i64 = count.build_query_scalar().fetch_one(&state.db).await?;
    let mut page = QueryBuilder::<Postgres>::new(efectivo::SELECT);
    filter.push(&mut page);
    page.push(" ORDER BY e.id OFFSET ")
        .push_bind(skip)
        .push(" LIMIT ")
        .push_bind(limit);
    let rows: Vec<Efectivo> = page.build_query_as().fetch_all(&state.db).await?;
    let mut response = Json(rows).into_response();
    response.headers_mut().insert("x-total-count", HeaderValue::from(total));
    Ok(response)
}

struct ListFilter {
    disponibilidad: Option<String>,
    unidad: Option<String>,
    q: Option<String>,
}

impl ListFilter {
    fn push(&self, qb: &mut QueryBuilder<Postgres>) {
        qb.push(" WHERE e.deleted_at IS NULL");
        if let Some(d) = &self.disponibilidad {
            qb.push(" AND e.disponibilidad = ")
                .push_bind(d.clone())
                .push("::estado_disponibilidad");
        }
        if let Some(u) = &self.unidad {
            qb.push(" AND lower(e.unidad) = lower(").push_bind(u.clone()).push(")");
        }
        if let Some(q) = &self.q {
            // Codigo, or the name of the unit's usuario.
            let pattern = format!("%{}%", escape_like(q));
            qb.push(" AND (e.codigo_interno ILIKE ")
                .push_bind(pattern.clone())
                .push(" OR EXISTS (SELECT 1 FROM usuarios u WHERE u.id = e.usuario_id AND (u.nombre || ' ' || u.apellido) ILIKE ")
                .push_bind(pattern)
                .push("))");
        }
    }
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[utoipa::path(get, path = "/api/v1/efectivos/me", tag = "efectivos",
    responses((status = 200, description = "The caller's own efectivo", body = Efectivo),
        (status = 404, description = "The caller has no efectivo")))]
async fn me(State(state): State<AppState>, Authenticated(caller): Authenticated) -> Result<Json<Efectivo>, ApiError> {
    let row = efectivo::by_usuario(&state.db, caller.user_id).await?;
    row.map(Json).ok_or_else(|| ApiError::not_found("efectivo"))
}

#[utoipa::path(get, path = "/api/v1/efectivos/{id}", tag = "efectivos", params(("id" = i64, Path, minimum = 1, description = "Efectivo id")),
    responses((status = 200, description = "Self, or any for nivel ≥ 2", body = Efectivo)))]
async fn one(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Efectivo>, ApiError> {
    let id = path_id(&id)?;
    let row = efectivo::by_id(&state.db, id).await?;
    match row {
        Some(e) if caller.is_supervisor() || e.usuario_id == caller.user_id => Ok(Json(e)),
        // A nivel 1 caller learns nothing about units that are not its own.
        _ if !caller.is_supervisor() => Err(ApiError::forbidden()),
        _ => Err(ApiError::not_found("efectivo")),
    }
}

fn require_admin(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// Q endpoints answer 202 unless the client asked to wait.
fn prefer(state: &AppState, headers: &HeaderMap) -> Result<Prefer, ApiError> {
    Prefer::parse(headers, state.settings.ingress.max_wait, None).map_err(|e| ApiError::validation(vec![e]))
}

async fn submit(
    state: &AppState,
    caller: &Caller,
    kind: &'static str,
    payload: Value,
    prefer: Prefer,
) -> Result<Response, ApiError> {
    let job = NewJob {
        job_id: uuid::Uuid::now_v7(),
        kind,
        summary: payload.clone(),
        payload,
        request_id: current_request_id(),
    };
    submit_and_answer(state, caller, job, prefer).await
}

#[utoipa::path(post, path = "/api/v1/efectivos", tag = "efectivos", request_body = crate::openapi::bodies::CreateEfectivo,
    responses((status = 201, description = "Created (nivel 3)", body = Efectivo), (status = 202, description = "Queued; follow the job", body = crate::openapi::answers::Accepted),
        (status = 409, description = "The usuario already has one, or the code exists")))]
async fn create(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    let prefer = prefer(&state, &headers)?;
    let mut f = Fields::new(&body);
    let usuario_id = f.integer("usuario_id", true, 1, i64::MAX);
    let codigo = f.pattern(
        "codigo_interno",
        true,
        upper,
        is_valid_codigo_interno,
        "^[A-Z0-9_-]{2,50}$",
    );
    let rango = f.string("rango", false, 0, 50);
    let unidad = f.string("unidad", false, 0, 100);
    let especialidad = f.string("especialidad", false, 0, 100);
    let lat = f.number("lat", false, -90.0, 90.0);
    let lng = f.number("lng", false, -180.0, 180.0);
    if f.has("lat") != f.has("lng") {
        let missing = if f.has("lat") { "lng" } else { "lat" };
        f.errors
            .push(FieldError::new(missing, "required", "lat and lng go together"));
    }
    f.finish()?;
    let payload = json!({
        "usuario_id": usuario_id, "codigo_interno": codigo, "rango": empty_to_none(rango),
        "unidad": empty_to_none(unidad), "especialidad": empty_to_none(especialidad), "lat": lat, "lng": lng,
    });
    submit(&state, &caller, "efectivo.create", payload, prefer).await
}

fn empty_to_none(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

#[utoipa::path(put, path = "/api/v1/efectivos/{id}", tag = "efectivos", params(("id" = i64, Path, minimum = 1, description = "Efectivo id")),
    request_body = crate::openapi::bodies::UpdateEfectivo,
    responses((status = 200, description = "Updated (nivel 3)", body = Efectivo), (status = 202, description = "Queued; follow the job", body = crate::openapi::answers::Accepted),
        (status = 409, description = "`duplicate` codigo_interno")))]
async fn update(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    let id = path_id(&id)?;
    let prefer = prefer(&state, &headers)?;
    let mut f = Fields::new(&body);
    let mut changes = Map::new();
    if body.contains_key("codigo_interno") {
        let codigo = f.pattern(
            "codigo_interno",
            true,
            upper,
            is_valid_codigo_interno,
            "^[A-Z0-9_-]{2,50}$",
        );
        changes.insert("codigo_interno".into(), json!(codigo));
    }
    // The optional texts: present means change, null or "" clears.
    for (field, max) in [("rango", 50), ("unidad", 100), ("especialidad", 100)] {
        if body.contains_key(field) {
            let v = f.string(field, false, 0, max);
            changes.insert(field.into(), json!(empty_to_none(v)));
        }
    }
    // Other keys (a client sending the whole Efectivo back) are not editable here and are ignored.
    if changes.is_empty() {
        f.errors.push(FieldError::new(
            "body",
            "required",
            "send at least one of codigo_interno, rango, unidad, especialidad",
        ));
    }
    f.finish()?;
    submit(
        &state,
        &caller,
        "efectivo.update",
        json!({ "id": id, "changes": changes }),
        prefer,
    )
    .await
}

#[utoipa::path(delete, path = "/api/v1/efectivos/{id}", tag = "efectivos", params(("id" = i64, Path, minimum = 1, description = "Efectivo id")),
    responses((status = 200, description = "Soft-deleted (nivel 3)", body = Efectivo), (status = 202, description = "Queued; follow the job", body = crate::openapi::answers::Accepted),
        (status = 409, description = "`efectivo_held` while an active task holds it")))]
async fn remove(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    let id = path_id(&id)?;
    let prefer = prefer(&state, &headers)?;
    submit(&state, &caller, "efectivo.delete", json!({ "id": id }), prefer).await
}

/// How far ahead of the server clock a `recorded_at` may be (device clocks drift).
const MAX_CLOCK_SKEW_S: i64 = 60;

#[utoipa::path(put, path = "/api/v1/efectivos/{id}/location", tag = "efectivos", params(("id" = i64, Path, minimum = 1, description = "Efectivo id")),
    request_body = crate::openapi::bodies::LocationUpdate,
    responses((status = 200, description = "The position now stored", body = crate::openapi::answers::StoredLocation), (status = 202, description = "Queued; follow the job", body = crate::openapi::answers::Accepted)))]
async fn location(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    let prefer = prefer(&state, &headers)?;
    let mut f = Fields::new(&body);
    let lat = f.number("lat", true, -90.0, 90.0);
    let lng = f.number("lng", true, -180.0, 180.0);
    let accuracy_m = f.number("accuracy_m", false, 0.0, 10_000.0);
    let recorded_at = f.timestamp("recorded_at", false);
    if recorded_at.is_some_and(|t| t > chrono::Utc::now() + chrono::Duration::seconds(MAX_CLOCK_SKEW_S)) {
        f.errors.push(FieldError::new(
            "recorded_at",
            "out_of_range",
            "recorded_at is in the future",
        ));
    }
    f.finish()?;
    let payload = json!({
        "id": id, "lat": lat, "lng": lng, "accuracy_m": accuracy_m,
        "recorded_at": recorded_at.map(|t| gad_shared::time::format(&t)),
    });
    submit(&state, &caller, "efectivo.location", payload, prefer).await
}

#[utoipa::path(put, path = "/api/v1/efectivos/{id}/disponibilidad", tag = "efectivos",
    params(("id" = i64, Path, minimum = 1, description = "Efectivo id")), request_body = crate::openapi::bodies::DisponibilidadChange,
    responses((status = 200, description = "Changed", body = Efectivo), (status = 202, description = "Queued; follow the job", body = crate::openapi::answers::Accepted),
        (status = 409, description = "`managed_state` (en_tarea) or `efectivo_held`")))]
async fn disponibilidad(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    let prefer = prefer(&state, &headers)?;
    let mut f = Fields::new(&body);
    let value = f.one_of("disponibilidad", true, &DISPONIBILIDADES);
    let motivo = f.string("motivo", false, 0, 500);
    f.finish()?;
    if value.as_deref() == Some("en_tarea") {
        return Err(managed_state());
    }
    let payload = json!({ "id": id, "disponibilidad": value, "motivo": empty_to_none(motivo) });
    submit(&state, &caller, "efectivo.disponibilidad", payload, prefer).await
}

fn managed_state() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "managed_state",
        "en_tarea is set and cleared only by the system",
    )
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, me, one, create, update, remove, location, disponibilidad))]
pub struct Api;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codigo_interno_rule() {
        assert!(is_valid_codigo_interno(&upper(" ef-01 ")));
        assert!(!is_valid_codigo_interno("A"));
        assert!(!is_valid_codigo_interno(&"A".repeat(51)));
        assert!(!is_valid_codigo_interno("AB CD"));
    }

    #[test]
    fn path_ids_are_positive_integers() {
        assert!(path_id("12").is_ok_and(|id| id == 12));
        assert!(path_id("0").is_err());
        assert!(path_id("x").is_err());
    }
}
