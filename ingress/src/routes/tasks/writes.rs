//! Queued writes: create (QW, 201 with `Location`), edit and delete (QW).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use gad_shared::domain::tarea;
use gad_shared::error_body::FieldError;
use gad_shared::http_error::ApiError;
use serde_json::{Map, Value, json};

use super::{prefer_or_error, submit, tarea_id};
use crate::body::JsonObject;
use crate::caller::{Authenticated, require_supervisor};
use crate::routes::LEGACY_WAIT_S;
use crate::state::AppState;
use crate::validate::Fields;

/// Tipos a client may send: every one but `emergencia` (§1).
const CLIENT_TIPOS: [&str; 6] = [
    "patrullaje",
    "investigacion",
    "vigilancia",
    "intervencion",
    "administrativa",
    "entrenamiento",
];
/// Create fields an edit may not carry: estado has its own error (§3).
const NOT_EDITABLE: &str = "efectivos_asignados";

/// The fields of a create, or of an edit when `partial` (§6.3, §7). Returns the
/// normalised values, keyed as in the body; in an edit, a clearable field
/// sent as `null` is kept as `null`.
fn task_fields(f: &mut Fields<'_>, body: &Map<String, Value>, partial: bool) -> Map<String, Value> {
    let required = !partial;
    let mut out = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            out.insert(k.into(), v);
        }
    };
    put(
        "codigo",
        f.pattern(
            "codigo",
            required,
            tarea::normalize_codigo,
            tarea::is_valid_codigo,
            "^[A-Z0-9_-]{3,20}$",
        )
        .map(Value::from),
    );
    put("titulo", f.string("titulo", required, 5, 200).map(Value::from));
    put("tipo", f.one_of("tipo", required, &CLIENT_TIPOS).map(Value::from));
    let inicio = f.timestamp("inicio_programado", required);
    put(
        "inicio_programado",
        inicio.map(|t| Value::from(gad_shared::time::format(&t))),
    );
    put(
        "delegado_usuario_id",
        f.integer("delegado_usuario_id", required, 1, i64::MAX).map(Value::from),
    );
    put("prioridad", f.integer("prioridad", false, 1, 5).map(Value::from));
    put("descripcion", f.string("descripcion", false, 0, 1000).map(Value::from));
    let fin = f.timestamp("fin_programado", false);
    put("fin_programado", fin.map(|t| Value::from(gad_shared::time::format(&t))));
    if let (Some(i), Some(e)) = (inicio, fin)
        && e <= i
    {
        f.errors.push(FieldError::new(
            "fin_programado",
            "invalid_range",
            "fin_programado must be after inicio_programado",
        ));
    }
    let lat = f.number("ubicacion_lat", false, -90.0, 90.0);
    let lon = f.number("ubicacion_lon", false, -180.0, 180.0);
    match (f.has("ubicacion_lat"), f.has("ubicacion_lon")) {
        (true, false) => f.errors.push(FieldError::new(
            "ubicacion_lon",
            "required",
            "ubicacion_lon goes with ubicacion_lat",
        )),
        (false, true) => f.errors.push(FieldError::new(
            "ubicacion_lat",
            "required",
            "ubicacion_lat goes with ubicacion_lon",
        )),
        _ => {}
    }
    put("ubicacion_lat", lat.map(Value::from));
    put("ubicacion_lon", lon.map(Value::from));
    put(
        "ubicacion_descripcion",
        f.string("ubicacion_descripcion", false, 0, 200).map(Value::from),
    );
    if partial {
        for key in [
            "descripcion",
            "fin_programado",
            "ubicacion_lat",
            "ubicacion_lon",
            "ubicacion_descripcion",
        ] {
            if body.get(key).is_some_and(Value::is_null) {
                put(key, Some(Value::Null));
            }
        }
        for key in [
            "codigo",
            "titulo",
            "tipo",
            "inicio_programado",
            "delegado_usuario_id",
            "prioridad",
        ] {
            if body.get(key).is_some_and(Value::is_null) {
                f.errors
                    .push(FieldError::new(key, "required", format!("{key} cannot be null")));
            }
        }
    }
    out
}

#[utoipa::path(post, path = "/api/v1/tasks", tag = "tasks", request_body = crate::openapi::bodies::CreateTarea,
    responses((status = 201, description = "Created", body = gad_shared::domain::tarea::Tarea), (status = 202, description = "Queued; follow the job", body = crate::openapi::answers::Accepted),
        (status = 409, description = "`duplicate` codigo, `schedule_overlap`, `efectivo_unavailable`")))]
pub async fn create(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let mut f = Fields::new(&body);
    let mut payload = task_fields(&mut f, &body, false);
    let efectivos = f.ids("efectivos_asignados", false, 50);
    let prefer = prefer_or_error(&headers, &state, Some(LEGACY_WAIT_S), &mut f.errors);
    f.finish()?;
    // nivel 1 creates only for itself; its efectivo list is checked by the worker.
    if !caller.is_supervisor() && payload.get("delegado_usuario_id").and_then(Value::as_i64) != Some(caller.user_id) {
        return Err(ApiError::forbidden());
    }
    payload.insert("efectivos_asignados".into(), json!(efectivos.unwrap_or_default()));
    payload.insert("origen".into(), json!("api"));
    let payload = Value::Object(payload);
    let summary = json!({ "codigo": payload["codigo"], "tipo": payload["tipo"], "delegado_usuario_id": payload["delegado_usuario_id"] });
    // The `Location` of the 201 comes with every create's answer (job_answer).
    submit(&state, &caller, "task.create", payload, summary, prefer).await
}

#[utoipa::path(method(put, patch), path = "/api/v1/tasks/{id}", tag = "tasks", params(("id" = i64, Path, minimum = 1, description = "Tarea id")),
    request_body = crate::openapi::bodies::UpdateTarea,
    responses((status = 200, description = "Updated (nivel ≥ 2)", body = gad_shared::domain::tarea::Tarea), (status = 202, description = "Queued; follow the job", body = crate::openapi::answers::Accepted),
        (status = 409, description = "`task_closed`, `duplicate`, `schedule_overlap`")))]
pub async fn update(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    require_supervisor(&caller)?;
    let id = tarea_id(&id)?;
    if body.contains_key("estado") {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "estado_read_only",
            "estado changes only through start, pause, resume, finish and cancel",
        )
        .with_details(json!({ "field": "estado" })));
    }
    let mut f = Fields::new(&body);
    let changes = task_fields(&mut f, &body, true);
    if body.contains_key(NOT_EDITABLE) {
        f.errors.push(FieldError::new(
            NOT_EDITABLE,
            "read_only",
            "use /assign and /unassign to change the efectivos",
        ));
    }
    let prefer = prefer_or_error(&headers, &state, Some(LEGACY_WAIT_S), &mut f.errors);
    f.finish()?;
    let fields: Vec<&String> = changes.keys().collect();
    let summary = json!({ "tarea_id": id, "fields": fields });
    let payload = json!({ "tarea_id": id, "changes": changes });
    submit(&state, &caller, "task.update", payload, summary, prefer).await
}

#[utoipa::path(delete, path = "/api/v1/tasks/{id}", tag = "tasks", params(("id" = i64, Path, minimum = 1, description = "Tarea id")),
    responses((status = 200, description = "Soft-deleted; holds released (nivel ≥ 2)", body = gad_shared::domain::tarea::Tarea), (status = 202, description = "Queued; follow the job", body = crate::openapi::answers::Accepted),
        (status = 409, description = "`invalid_transition` while en_curso or pausada")))]
pub async fn delete(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_supervisor(&caller)?;
    let id = tarea_id(&id)?;
    let mut errors = Vec::new();
    let prefer = prefer_or_error(&headers, &state, Some(LEGACY_WAIT_S), &mut errors);
    let Some(prefer) = prefer.filter(|_| errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let payload = json!({ "tarea_id": id });
    submit(&state, &caller, "task.delete", payload.clone(), payload, Some(prefer)).await
}
