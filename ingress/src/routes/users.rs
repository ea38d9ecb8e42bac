//! `/api/v1/users` and its alias `/api/v1/usuarios` (§6.3): reads and the
//! direct bookkeeping (preferences, unlock). The queued writes are in
//! [`super::user_jobs`].

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use gad_shared::auth::Caller;
use gad_shared::domain::usuario::{self, COLUMNS, PREF_NOTIF_SUPERVISION, Usuario};
use gad_shared::http_error::ApiError;

use crate::body::JsonObject;
use crate::caller::{Authenticated, require_supervisor};
use crate::routes::direct_audit::{self, DirectAudit};
use crate::routes::user_jobs;
use crate::state::AppState;
use crate::validate::{Fields, Params};

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(routes("/api/v1/users"))
        .merge(routes("/api/v1/usuarios"))
}

fn routes(base: &str) -> Router<AppState> {
    Router::new()
        .route(base, get(list).post(user_jobs::create))
        .route(&format!("{base}/me/preferences"), put(preferences))
        .route(
            &format!("{base}/{{id}}"),
            get(get_one).put(user_jobs::update).delete(user_jobs::delete),
        )
        .route(&format!("{base}/{{id}}/unlock"), post(unlock))
}

/// `me` or a numeric id; anything else names no usuario.
pub fn target_id(caller: &Caller, raw: &str) -> Result<i64, ApiError> {
    if raw == "me" {
        return Ok(caller.user_id);
    }
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::not_found("usuario"))
}

/// Skip and limit of a list (§6.1): `skip` ≥ 0, `limit` 1–500, default 100.
pub fn pagination(p: &mut Params<'_>) -> (i64, i64) {
    let skip = p.integer("skip", false, 0, i64::MAX).unwrap_or(0);
    let limit = p.integer("limit", false, 1, 500).unwrap_or(100);
    (skip, limit)
}

/// A bare JSON array with `X-Total-Count`.
pub fn list_response<T: serde::Serialize>(items: Vec<T>, total: i64) -> Response {
    ([("x-total-count", total.to_string())], Json(items)).into_response()
}

/// `%` and `_` in a search are literal, not patterns.
pub fn contains_pattern(q: &str) -> String {
    let escaped = q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    params(("skip" = Option<i64>, Query, minimum = 0, description = "Rows to skip"), ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "At most this many (default 100)"), ("nivel" = Option<i16>, Query, minimum = 1, maximum = 3),
        ("q" = Option<String>, Query, description = "In nombre, apellido, email or dni")),
    responses((status = 200, description = "Ordered by id (nivel ≥ 2)", body = [Usuario], headers(("x-total-count" = i64, description = "Rows matching the filters")))))]
async fn list(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    require_supervisor(&caller)?;
    let mut p = Params::new(&raw);
    let (skip, limit) = pagination(&mut p);
    let nivel = p.integer("nivel", false, 1, 3).map(|n| n as i16);
    if !p.errors.is_empty() {
        return Err(ApiError::validation(p.errors));
    }
    let q = raw
        .get("q")
        .map(|q| q.trim())
        .filter(|q| !q.is_empty())
        .map(contains_pattern);
    let filter = "deleted_at IS NULL AND ($1::smallint IS NULL OR nivel = $1)
                  AND ($2::text IS NULL OR nombre ILIKE $2 OR apellido ILIKE $2 OR email ILIKE $2 OR dni ILIKE $2)";
    let items: Vec<Usuario> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM usuarios WHERE {filter} ORDER BY id OFFSET $3 LIMIT $4"
    )))
    .bind(nivel)
    .bind(q.as_deref())
    .bind(skip)
    .bind(limit)
    .fetch_all(&state.db)
    .await?;
    let (total,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM usuarios WHERE {filter}"
    )))
    .bind(nivel)
    .bind(q.as_deref())
    .fetch_one(&state.db)
    .await?;
    Ok(list_response(items, total))
}

/// Self, or nivel ≥ 2 for anyone.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path, pattern = "^(me|[1-9][0-9]{0,17})$", description = "A usuario id, or `me`")),
    responses((status = 200, description = "Self, or anyone for nivel ≥ 2", body = Usuario)))]
async fn get_one(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Usuario>, ApiError> {
    let id = target_id(&caller, &id)?;
    if id != caller.user_id {
        require_supervisor(&caller)?;
    }
    let found = usuario::find(&state.db, id).await?;
    found.map(Json).ok_or_else(|| ApiError::not_found("usuario"))
}

/// `{notif_supervision?: bool}` merged into `extra_data`; answers every preference.
#[utoipa::path(put, path = "/api/v1/users/me/preferences", tag = "users",
    request_body = crate::openapi::bodies::Preferences,
    responses((status = 200, description = "Every preference", body = crate::openapi::answers::NotifPreferences)))]
async fn preferences(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonObject(body): JsonObject,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut f = Fields::new(&body);
    let notif = f.boolean(PREF_NOTIF_SUPERVISION, false);
    f.finish()?;
    let mut patch = serde_json::Map::new();
    if let Some(v) = notif {
        patch.insert(PREF_NOTIF_SUPERVISION.into(), v.into());
    }
    let row: Option<(serde_json::Value,)> = sqlx::query_as(
        "UPDATE usuarios SET extra_data = extra_data || $2 WHERE id = $1 AND deleted_at IS NULL RETURNING extra_data",
    )
    .bind(caller.user_id)
    .bind(serde_json::Value::Object(patch))
    .fetch_optional(&state.db)
    .await?;
    let (extra,) = row.ok_or_else(|| ApiError::not_found("usuario"))?;
    let notif = extra
        .get(PREF_NOTIF_SUPERVISION)
        .and_then(|v| v.as_bool())
        .unwrap_or(true);
    Ok(Json(serde_json::json!({ PREF_NOTIF_SUPERVISION: notif })))
}

/// Clears a login lockout (nivel 3).
#[utoipa::path(post, path = "/api/v1/users/{id}/unlock", tag = "users", params(("id" = String, Path, pattern = "^(me|[1-9][0-9]{0,17})$", description = "A usuario id, or `me`")),
    responses((status = 200, description = "Login lockout cleared (nivel 3)", body = Usuario)))]
async fn unlock(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Usuario>, ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden());
    }
    let id = target_id(&caller, &id)?;
    let row: Option<Usuario> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE usuarios SET intentos_fallidos = 0, bloqueado_hasta = NULL
         WHERE id = $1 AND deleted_at IS NULL RETURNING {COLUMNS}"
    )))
    .bind(id)
    .fetch_optional(&state.db)
    .await?;
    let usuario = row.ok_or_else(|| ApiError::not_found("usuario"))?;
    let entry = DirectAudit {
        after: Some(serde_json::json!({ "unlocked": true })),
        ..DirectAudit::new("user_updated", Some(caller.user_id), Some(id))
    };
    direct_audit::record(&state.db, &headers, entry).await;
    Ok(Json(usuario))
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    get_one,
    preferences,
    unlock,
    user_jobs::create,
    user_jobs::update,
    user_jobs::delete
))]
pub struct Api;
