//! `GET /api/v1/admin/audit` (nivel 3): the audit log, newest first.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use chrono::{DateTime, Utc};
use gad_shared::error_body::FieldError;
use gad_shared::http_error::ApiError;
use serde::Serialize;
use uuid::Uuid;

use crate::caller::Authenticated;
use crate::routes::users::{list_response, pagination};
use crate::state::AppState;
use crate::validate::Params;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/admin/audit", get(audit))
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AuditRow {
    pub id: i64,
    pub event_id: Uuid,
    #[serde(with = "gad_shared::time::millis")]
    pub occurred_at: DateTime<Utc>,
    pub actor_usuario_id: Option<i64>,
    pub actor_telegram_id: Option<i64>,
    pub action: String,
    pub severity: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub request_id: Option<String>,
    pub job_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub success: bool,
    pub error_code: Option<String>,
}

const FILTER: &str = "($1::bigint IS NULL OR actor_usuario_id = $1)
    AND ($2::text IS NULL OR action = $2)
    AND ($3::text IS NULL OR resource_type = $3)
    AND ($4::text IS NULL OR resource_id = $4)
    AND ($5::timestamptz IS NULL OR occurred_at >= $5)
    AND ($6::timestamptz IS NULL OR occurred_at < $6)";

#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin",
    params(("skip" = Option<i64>, Query, minimum = 0, description = "Rows to skip"), ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "At most this many (default 100)"), ("actor" = Option<i64>, Query, minimum = 1), ("action" = Option<String>, Query, max_length = 48),
        ("resource_type" = Option<String>, Query, max_length = 32), ("resource_id" = Option<String>, Query, max_length = 64),
        ("desde" = Option<chrono::DateTime<chrono::Utc>>, Query), ("hasta" = Option<chrono::DateTime<chrono::Utc>>, Query)),
    responses((status = 200, description = "Newest first (nivel 3)", body = [AuditRow], headers(("x-total-count" = i64, description = "Rows matching the filters")))))]
async fn audit(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden());
    }
    let mut p = Params::new(&raw);
    let (skip, limit) = pagination(&mut p);
    let actor = p.integer("actor", false, 1, i64::MAX);
    let mut errors = p.errors;
    let action = text(&raw, "action", 48, &mut errors);
    let resource_type = text(&raw, "resource_type", 32, &mut errors);
    let resource_id = text(&raw, "resource_id", 64, &mut errors);
    let desde = timestamp(&raw, "desde", &mut errors);
    let hasta = timestamp(&raw, "hasta", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let rows: Vec<AuditRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, event_id, occurred_at, actor_usuario_id, actor_telegram_id, action, severity::text AS severity,
                resource_type, resource_id, before, after, request_id, job_id, host(ip) AS ip, user_agent, success,
                error_code
           FROM audit_log WHERE {FILTER} ORDER BY occurred_at DESC, id DESC OFFSET $7 LIMIT $8"
    )))
    .bind(actor)
    .bind(action.as_deref())
    .bind(resource_type.as_deref())
    .bind(resource_id.as_deref())
    .bind(desde)
    .bind(hasta)
    .bind(skip)
    .bind(limit)
    .fetch_all(&state.db)
    .await?;
    let (total,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM audit_log WHERE {FILTER}"
    )))
    .bind(actor)
    .bind(action.as_deref())
    .bind(resource_type.as_deref())
    .bind(resource_id.as_deref())
    .bind(desde)
    .bind(hasta)
    .fetch_one(&state.db)
    .await?;
    Ok(list_response(rows, total))
}

fn text(raw: &HashMap<String, String>, field: &str, max: usize, errors: &mut Vec<FieldError>) -> Option<String> {
    let v = raw.get(field).map(|v| v.trim()).filter(|v| !v.is_empty())?;
    if v.chars().count() > max {
        errors.push(FieldError::new(
            field,
            "invalid_length",
            format!("{field} must have at most {max} characters"),
        ));
        return None;
    }
    Some(v.to_string())
}

/// RFC 3339 with an offset; without one it is `naive_timestamp` (§ conventions).
fn timestamp(raw: &HashMap<String, String>, field: &str, errors: &mut Vec<FieldError>) -> Option<DateTime<Utc>> {
    let v = raw.get(field).map(|v| v.trim()).filter(|v| !v.is_empty())?;
    match DateTime::parse_from_rfc3339(v) {
        Ok(t) => Some(t.to_utc()),
        Err(_) if chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f").is_ok() => {
            errors.push(FieldError::new(
                field,
                "naive_timestamp",
                format!("{field} needs a UTC offset (e.g. Z)"),
            ));
            None
        }
        Err(_) => {
            errors.push(FieldError::new(
                field,
                "invalid_timestamp",
                format!("{field} must be an RFC 3339 timestamp"),
            ));
            None
        }
    }
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(audit))]
pub struct Api;
