//! `/api/v1/tasks` (§6.3): lists, single tareas and their history are read
//! directly ([`reads`]); every write becomes a `task.*` job ([`writes`] for
//! create, edit and delete; [`actions`] for transitions, assignments and
//! answers). Ingress checks the body and the nivel; the worker checks
//! ownership against the current rows.

mod actions;
mod reads;
mod writes;

use axum::Router;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use gad_shared::auth::Caller;
use gad_shared::error_body::FieldError;
use gad_shared::http_error::{ApiError, current_request_id};
use serde_json::Value;

use crate::job_answer::submit_and_answer;
use crate::prefer::Prefer;
use crate::state::AppState;
use crate::submit::NewJob;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tasks", get(reads::list).post(writes::create))
        .route(
            "/api/v1/tasks/{id}",
            get(reads::get_one)
                .put(writes::update)
                .patch(writes::update)
                .delete(writes::delete),
        )
        .route("/api/v1/tasks/{id}/history", get(reads::history))
        .route("/api/v1/tasks/{id}/assign", post(actions::assign))
        .route("/api/v1/tasks/{id}/unassign", post(actions::unassign))
        .route("/api/v1/tasks/{id}/respond", post(actions::respond))
        .route("/api/v1/tasks/{id}/{accion}", post(actions::transition))
}

/// Ids in paths are positive integers; anything else names no tarea.
fn tarea_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::not_found("tarea"))
}

/// nivel 1 sees its own tasks only (§1).
fn own_for(caller: &Caller) -> Option<i64> {
    (!caller.is_supervisor()).then_some(caller.user_id)
}

/// The `Prefer` header, its error added to the others so one 422 lists all.
fn prefer_or_error(
    headers: &HeaderMap,
    state: &AppState,
    legacy_wait: Option<u64>,
    errors: &mut Vec<FieldError>,
) -> Option<Prefer> {
    match Prefer::parse(headers, state.settings.ingress.max_wait, legacy_wait) {
        Ok(p) => Some(p),
        Err(e) => {
            errors.push(e);
            None
        }
    }
}

async fn submit(
    state: &AppState,
    caller: &Caller,
    kind: &'static str,
    payload: Value,
    summary: Value,
    prefer: Option<Prefer>,
) -> Result<Response, ApiError> {
    let job = NewJob {
        job_id: uuid::Uuid::now_v7(),
        kind,
        payload,
        summary,
        request_id: current_request_id(),
    };
    submit_and_answer(state, caller, job, prefer.unwrap_or_default()).await
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    reads::list,
    reads::get_one,
    reads::history,
    writes::create,
    writes::update,
    writes::delete,
    actions::transition,
    actions::assign,
    actions::unassign,
    actions::respond
))]
pub struct Api;
