//! `/api/v1/admin/dlq` (nivel 3): the dead-letter queue read from `GAD_DLQ`,
//! replay and discard. The rules live in `gad_shared::dlq`, which the
//! `gad dlq` command shares; this module only speaks HTTP.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use gad_shared::auth::Caller;
use gad_shared::dlq::{Actor, DlqEntry, DlqId, DlqOps, ListQuery};
use gad_shared::error_body::FieldError;
use gad_shared::http_error::{ApiError, current_request_id};

use crate::caller::Authenticated;
use crate::routes::users::{list_response, pagination};
use crate::state::AppState;
use crate::validate::Params;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/dlq", get(list))
        .route("/api/v1/admin/dlq/{id}/replay", post(replay))
        .route("/api/v1/admin/dlq/{id}/discard", post(discard))
}

fn ops(state: &AppState, caller: &Caller) -> Result<DlqOps, ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden());
    }
    let status = state
        .nats
        .status_bucket()
        .ok_or_else(|| ApiError::dependency_unavailable("nats"))?;
    Ok(DlqOps {
        db: state.db.clone(),
        js: state.nats.js.clone(),
        publisher: state.publisher.clone(),
        topology: state.nats.topology.clone(),
        status: status.clone(),
        timeout: state.settings.nats.publish_timeout,
    })
}

#[utoipa::path(get, path = "/api/v1/admin/dlq", tag = "admin",
    params(("skip" = Option<i64>, Query, minimum = 0, description = "Rows to skip"), ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "At most this many (default 100)"), ("kind" = Option<String>, Query, max_length = 48)),
    responses((status = 200, description = "Dead-letter records, undecodable ones included (nivel 3)", body = [DlqEntry], headers(("x-total-count" = i64, description = "Rows matching the filters")))))]
async fn list(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let ops = ops(&state, &caller)?;
    let mut p = Params::new(&raw);
    let (skip, limit) = pagination(&mut p);
    let kind = raw.get("kind").map(|k| k.trim()).filter(|k| !k.is_empty());
    if kind.is_some_and(|k| k.chars().count() > 48) {
        p.errors.push(FieldError::new(
            "kind",
            "invalid_length",
            "kind must have at most 48 characters",
        ));
    }
    if !p.errors.is_empty() {
        return Err(ApiError::validation(p.errors));
    }
    let query = ListQuery {
        kind: kind.map(str::to_string),
        skip: skip.max(0) as u64,
        limit: limit.max(1) as u64,
    };
    let (entries, total) = ops.list(&query).await?;
    Ok(list_response(entries, total.min(i64::MAX as u64) as i64))
}

#[utoipa::path(post, path = "/api/v1/admin/dlq/{id}/replay", tag = "admin", params(("id" = String, Path, description = "Job id, or the record's stream sequence")),
    responses((status = 200, description = "Queued again with a fresh attempt budget", body = DlqEntry),
        (status = 409, description = "`job_not_dead`, `dlq_undecodable` or `dlq_redacted`")))]
async fn replay(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<DlqEntry>, ApiError> {
    let ops = ops(&state, &caller)?;
    let id = DlqId::parse(&id).ok_or_else(|| ApiError::not_found("dead-letter record"))?;
    Ok(Json(ops.replay(id, &actor(&caller)).await?))
}

#[utoipa::path(post, path = "/api/v1/admin/dlq/{id}/discard", tag = "admin", params(("id" = String, Path, description = "Job id, or the record's stream sequence")),
    responses((status = 200, description = "Cancelled with `error.error = discarded`", body = DlqEntry),
        (status = 409, description = "`job_not_dead`")))]
async fn discard(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<DlqEntry>, ApiError> {
    let ops = ops(&state, &caller)?;
    let id = DlqId::parse(&id).ok_or_else(|| ApiError::not_found("dead-letter record"))?;
    Ok(Json(ops.discard(id, &actor(&caller)).await?))
}

fn actor(caller: &Caller) -> Actor {
    let client = crate::client::current().unwrap_or_default();
    Actor {
        usuario_id: Some(caller.user_id),
        request_id: current_request_id(),
        ip: client.ip,
        user_agent: client.user_agent,
    }
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, replay, discard))]
pub struct Api;
