//! Queued actions on one tarea (Q): the §3 transitions, assignment changes
//! and the assignee's answer.

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use gad_shared::http_error::ApiError;
use serde_json::{Map, Value, json};

use super::{prefer_or_error, submit, tarea_id};
use crate::body::JsonObject;
use crate::caller::{Authenticated, require_supervisor};
use crate::state::AppState;
use crate::validate::Fields;

const TRANSITIONS: [&str; 5] = ["start", "pause", "resume", "finish", "cancel"];

#[utoipa::path(post, path = "/api/v1/tasks/{id}/{accion}", tag = "tasks",
    params(("id" = i64, Path, minimum = 1, description = "Tarea id"), ("accion" = String, Path, pattern = "^(start|pause|resume|finish|cancel)$",
        description = "The §3 transition; cancel is nivel ≥ 2")),
    request_body(content = Option<crate::openapi::bodies::TransitionBody>, description = "May be left out"),
    responses((status = 200, description = "The tarea after the transition", body = gad_shared::domain::tarea::Tarea), (status = 202, description = "Queued; follow the job", body = crate::openapi::answers::Accepted),
        (status = 409, description = "`invalid_transition` (details: estado_actual, accion, permitidas)")))]
pub async fn transition(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((id, accion)): Path<(String, String)>,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, ApiError> {
    if !TRANSITIONS.contains(&accion.as_str()) {
        return Err(ApiError::not_found("route"));
    }
    let id = tarea_id(&id)?;
    let body = optional_body(request).await?;
    if accion == "cancel" {
        require_supervisor(&caller)?;
    }
    let mut f = Fields::new(&body);
    let motivo = if accion == "cancel" {
        f.string("motivo", true, 3, 500)
    } else {
        f.string("motivo", false, 0, 500)
    };
    let prefer = prefer_or_error(&headers, &state, None, &mut f.errors);
    f.finish()?;
    let payload = json!({ "tarea_id": id, "accion": accion, "motivo": motivo.filter(|m| !m.is_empty()) });
    submit(&state, &caller, "task.transition", payload.clone(), payload, prefer).await
}

#[utoipa::path(post, path = "/api/v1/tasks/{id}/assign", tag = "tasks", params(("id" = i64, Path, minimum = 1, description = "Tarea id")),
    request_body = crate::openapi::bodies::EfectivoIds,
    responses((status = 200, description = "Assigned (already assigned: no-op)", body = crate::openapi::answers::Assignment), (status = 202, description = "Queued; follow the job", body = crate::openapi::answers::Accepted),
        (status = 409, description = "`efectivo_unavailable` or `task_closed`")))]
pub async fn assign(
    state: State<AppState>,
    caller: Authenticated,
    path: Path<String>,
    headers: HeaderMap,
    body: JsonObject,
) -> Result<Response, ApiError> {
    assignment(state, caller, path, headers, body, "task.assign").await
}

#[utoipa::path(post, path = "/api/v1/tasks/{id}/unassign", tag = "tasks", params(("id" = i64, Path, minimum = 1, description = "Tarea id")),
    request_body = crate::openapi::bodies::EfectivoIds,
    responses((status = 200, description = "Unassigned; holds released", body = crate::openapi::answers::Assignment), (status = 202, description = "Queued; follow the job", body = crate::openapi::answers::Accepted),
        (status = 409, description = "`task_closed`")))]
pub async fn unassign(
    state: State<AppState>,
    caller: Authenticated,
    path: Path<String>,
    headers: HeaderMap,
    body: JsonObject,
) -> Result<Response, ApiError> {
    assignment(state, caller, path, headers, body, "task.unassign").await
}

async fn assignment(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
    kind: &'static str,
) -> Result<Response, ApiError> {
    require_supervisor(&caller)?;
    let id = tarea_id(&id)?;
    let mut f = Fields::new(&body);
    let ids = f.ids("efectivo_ids", true, 50);
    let prefer = prefer_or_error(&headers, &state, None, &mut f.errors);
    f.finish()?;
    let payload = json!({ "tarea_id": id, "efectivo_ids": ids.unwrap_or_default() });
    submit(&state, &caller, kind, payload.clone(), payload, prefer).await
}

#[utoipa::path(post, path = "/api/v1/tasks/{id}/respond", tag = "tasks", params(("id" = i64, Path, minimum = 1, description = "Tarea id")),
    request_body = crate::openapi::bodies::TaskResponse,
    responses((status = 200, description = "The assignee's answer", body = crate::openapi::answers::AssigneeAnswer), (status = 202, description = "Queued; follow the job", body = crate::openapi::answers::Accepted),
        (status = 409, description = "`invalid_transition`: already answered")))]
pub async fn respond(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let id = tarea_id(&id)?;
    let mut f = Fields::new(&body);
    let respuesta = f.one_of("respuesta", true, &["aceptada", "rechazada"]);
    let motivo = f.string("motivo", false, 0, 500);
    let prefer = prefer_or_error(&headers, &state, None, &mut f.errors);
    f.finish()?;
    let payload = json!({ "tarea_id": id, "respuesta": respuesta, "motivo": motivo.filter(|m| !m.is_empty()) });
    submit(&state, &caller, "task.respond", payload.clone(), payload, prefer).await
}

/// A transition may be posted with no body at all; a body that is sent must
/// be a JSON object.
async fn optional_body(request: Request) -> Result<Map<String, Value>, ApiError> {
    if request.headers().contains_key(header::CONTENT_TYPE) {
        return Ok(JsonObject::from_request(request, &()).await?.0);
    }
    let bytes = axum::body::Bytes::from_request(request, &())
        .await
        .map_err(|_| ApiError::bad_request("the body could not be read"))?;
    if bytes.is_empty() {
        Ok(Map::new())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send application/json",
        ))
    }
}
