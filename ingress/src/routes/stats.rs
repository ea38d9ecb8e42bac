//! `/api/v1/stats` (§6.3): per-usuario task figures, cached in Redis and
//! computed live when Redis is unavailable.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use gad_shared::auth::Caller;
use gad_shared::error_body::FieldError;
use gad_shared::http_error::ApiError;
use gad_shared::stats_cache::{self, StatsAnswer};
use serde_json::{Value, json};

use crate::caller::Authenticated;
use crate::state::AppState;
use crate::validate::Params;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/stats/user/{id}", get(user_stats))
        .route("/api/v1/stats/invalidate/user/{id}", post(invalidate))
}

#[utoipa::path(get, path = "/api/v1/stats/user/{id}", tag = "stats",
    params(("id" = i64, Path, minimum = 1, description = "Usuario id"),
        ("days" = Option<i64>, Query, minimum = 1, maximum = 365, description = "Default 30"),
        ("use_cache" = Option<bool>, Query, description = "Default true")),
    responses((status = 200, description = "Self, or anyone for nivel ≥ 2", body = StatsAnswer)))]
async fn user_stats(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<StatsAnswer>, ApiError> {
    let mut p = Params::new(&raw);
    let user_id = path_id(&id, &mut p.errors);
    let days = p.integer("days", false, 1, 365).unwrap_or(30);
    let use_cache = boolean(&raw, "use_cache", &mut p.errors).unwrap_or(true);
    if !p.errors.is_empty() {
        return Err(ApiError::validation(p.errors));
    }
    let user_id = user_id.ok_or_else(|| ApiError::not_found("usuario"))?;
    self_or_supervisor(&caller, user_id)?;
    let days = u32::try_from(days).map_err(ApiError::internal)?;
    let answer = stats_cache::load(&state.db, &state.redis, user_id, days, use_cache)
        .await?
        .ok_or_else(|| ApiError::not_found("usuario"))?;
    Ok(Json(answer))
}

/// Bumps the usuario's version, so every cached entry of theirs is skipped.
#[utoipa::path(post, path = "/api/v1/stats/invalidate/user/{id}", tag = "stats",
    params(("id" = i64, Path, minimum = 1, description = "Usuario id")),
    responses((status = 200, description = "Cached figures dropped", body = crate::openapi::answers::Invalidated)))]
async fn invalidate(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut errors = Vec::new();
    let user_id = path_id(&id, &mut errors).ok_or_else(|| ApiError::validation(errors))?;
    self_or_supervisor(&caller, user_id)?;
    let mut conn = state
        .redis
        .conn()
        .await
        .ok_or_else(|| ApiError::dependency_unavailable("redis"))?;
    stats_cache::bump(&mut conn, &[user_id].into()).await.map_err(|e| {
        tracing::warn!(error = %e, "stats invalidation failed");
        ApiError::dependency_unavailable("redis")
    })?;
    Ok(Json(json!({
        "message": format!("stats cache of usuario {user_id} invalidated"),
        "invalidated": true,
    })))
}

fn self_or_supervisor(caller: &Caller, user_id: i64) -> Result<(), ApiError> {
    if caller.user_id == user_id || caller.is_supervisor() {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

fn path_id(raw: &str, errors: &mut Vec<FieldError>) -> Option<i64> {
    match raw.parse::<i64>() {
        Ok(id) if id > 0 => Some(id),
        _ => {
            errors.push(FieldError::new(
                "id",
                "invalid_integer",
                "id must be a positive whole number",
            ));
            None
        }
    }
}

/// `true`/`false` (also `1`/`0`), case-insensitive.
fn boolean(raw: &HashMap<String, String>, field: &str, errors: &mut Vec<FieldError>) -> Option<bool> {
    let v = raw
        .get(field)
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())?;
    match v.as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => {
            errors.push(FieldError::new(
                field,
                "invalid_boolean",
                format!("{field} must be true or false"),
            ));
            None
        }
    }
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(user_stats, invalidate))]
pub struct Api;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_and_ids_are_strict() {
        let raw: HashMap<String, String> = [("a", "TRUE"), ("b", "0"), ("c", "yes")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut errors = Vec::new();
        assert_eq!(boolean(&raw, "a", &mut errors), Some(true));
        assert_eq!(boolean(&raw, "b", &mut errors), Some(false));
        assert_eq!(boolean(&raw, "c", &mut errors), None);
        assert_eq!(boolean(&raw, "absent", &mut errors), None);
        assert_eq!(path_id("12", &mut errors), Some(12));
        assert_eq!(path_id("0", &mut errors), None);
        assert_eq!(path_id("x", &mut errors), None);
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["c", "id", "id"]);
    }
}
