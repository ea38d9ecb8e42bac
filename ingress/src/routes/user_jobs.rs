//! The queued usuario writes (§6.3): `user.create` and `user.update` (QW) and
//! `user.delete` (Q). Validated and role-checked here; the `tasks` lane hashes
//! passwords, applies the change and audits it.
//!
//! A password travels only in the job's payload, never in its summary: the
//! summary is what `GET /api/v1/jobs/{id}` and the `jobs` row show.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use gad_shared::auth::Caller;
use gad_shared::domain::usuario::{self, PASSWORD_MAX, PASSWORD_MIN};
use gad_shared::error_body::FieldError;
use gad_shared::http_error::{ApiError, current_request_id};
use serde_json::{Map, Value, json};

use crate::body::JsonObject;
use crate::caller::Authenticated;
use crate::job_answer::submit_and_answer;
use crate::prefer::Prefer;
use crate::routes::LEGACY_WAIT_S;
use crate::routes::users::target_id;
use crate::state::AppState;
use crate::submit::NewJob;
use crate::validate::Fields;

/// What only an administrator may change on a usuario.
const ADMIN_ONLY_FIELDS: [&str; 4] = ["nivel", "verificado", "email", "dni"];

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = crate::openapi::bodies::CreateUsuario,
    responses((status = 201, description = "Created (nivel 3)", body = gad_shared::domain::usuario::Usuario), (status = 202, description = "Queued; follow the job", body = crate::openapi::answers::Accepted),
        (status = 409, description = "`duplicate` email or dni")))]
pub async fn create(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden());
    }
    let mut f = Fields::new(&body);
    let prefer = legacy_prefer(&state, &headers, &mut f);
    let email = email(&mut f, true);
    let password = password(&mut f, &body, "password", true);
    let nombre = f.string("nombre", true, 2, 100);
    let apellido = f.string("apellido", true, 2, 100);
    let dni = dni(&mut f, true);
    let telefono = telefono(&mut f, &body);
    let nivel = f.integer("nivel", false, 1, 3).unwrap_or(1);
    let verificado = f.boolean("verificado", false).unwrap_or(true);
    f.finish()?;
    let summary = json!({
        "email": email, "nombre": nombre, "apellido": apellido, "dni": dni,
        "telefono": telefono.flatten(), "nivel": nivel, "verificado": verificado,
    });
    let mut payload = summary.clone();
    payload["password"] = json!(password);
    queue(&state, &caller, "user.create", payload, summary, prefer).await
}

/// Partial. Self may change nombre, apellido, telefono and password (with
/// `current_password`); nivel 3 may change everything on anyone.
#[utoipa::path(put, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path, pattern = "^(me|[1-9][0-9]{0,17})$", description = "A usuario id, or `me`")),
    request_body = crate::openapi::bodies::UpdateUsuario,
    responses((status = 200, description = "Updated", body = gad_shared::domain::usuario::Usuario), (status = 202, description = "Queued; follow the job", body = crate::openapi::answers::Accepted),
        (status = 409, description = "`duplicate` email or dni")))]
pub async fn update(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let id = target_id(&caller, &id)?;
    if !caller.is_admin()
        && (id != caller.user_id
            || ADMIN_ONLY_FIELDS
                .iter()
                .any(|k| body.get(*k).is_some_and(|v| !v.is_null())))
    {
        return Err(ApiError::forbidden());
    }
    let mut f = Fields::new(&body);
    let prefer = legacy_prefer(&state, &headers, &mut f);
    let mut summary = Map::new();
    summary.insert("usuario_id".into(), id.into());
    if let Some(v) = email(&mut f, false) {
        summary.insert("email".into(), v.into());
    }
    for field in ["nombre", "apellido"] {
        if let Some(v) = f.string(field, false, 2, 100) {
            summary.insert(field.into(), v.into());
        }
    }
    if let Some(v) = dni(&mut f, false) {
        summary.insert("dni".into(), v.into());
    }
    if let Some(v) = telefono(&mut f, &body) {
        summary.insert("telefono".into(), v.into());
    }
    if let Some(v) = f.integer("nivel", false, 1, 3) {
        summary.insert("nivel".into(), v.into());
    }
    if let Some(v) = f.boolean("verificado", false) {
        summary.insert("verificado".into(), v.into());
    }
    let new_password = password(&mut f, &body, "password", false);
    // Changing one's own password proves knowledge of the current one, even for
    // an administrator: a stolen token alone must not take the account over.
    let current = if new_password.is_some() && id == caller.user_id {
        password_present(&mut f, &body, "current_password")
    } else {
        None
    };
    f.finish()?;
    let mut payload = summary.clone();
    if let Some(p) = new_password {
        summary.insert("password_change".into(), true.into());
        payload.insert("password".into(), p.into());
        if let Some(c) = current {
            payload.insert("current_password".into(), c.into());
        }
    }
    queue(&state, &caller, "user.update", payload.into(), summary.into(), prefer).await
}

/// Soft delete (nivel 3): answers 202 unless the client asks to wait.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path, pattern = "^(me|[1-9][0-9]{0,17})$", description = "A usuario id, or `me`")),
    responses((status = 200, description = "Soft-deleted; its tokens are revoked (nivel 3)", body = gad_shared::domain::usuario::Usuario), (status = 202, description = "Queued; follow the job", body = crate::openapi::answers::Accepted)))]
pub async fn delete(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden());
    }
    let id = target_id(&caller, &id)?;
    let prefer =
        Prefer::parse(&headers, state.settings.ingress.max_wait, None).map_err(|e| ApiError::validation(vec![e]))?;
    let payload = json!({ "usuario_id": id });
    queue(&state, &caller, "user.delete", payload.clone(), payload, prefer).await
}

pub async fn queue(
    state: &AppState,
    caller: &Caller,
    kind: &'static str,
    payload: Value,
    summary: Value,
    prefer: Prefer,
) -> Result<Response, ApiError> {
    let job = NewJob {
        job_id: uuid::Uuid::now_v7(),
        kind,
        payload,
        summary,
        request_id: current_request_id(),
    };
    submit_and_answer(state, caller, job, prefer).await
}

/// `Prefer` for a QW endpoint, its error reported with the body's.
fn legacy_prefer(state: &AppState, headers: &HeaderMap, f: &mut Fields<'_>) -> Prefer {
    Prefer::parse(headers, state.settings.ingress.max_wait, Some(LEGACY_WAIT_S)).unwrap_or_else(|e| {
        f.errors.push(e);
        Prefer::default()
    })
}

fn email(f: &mut Fields<'_>, required: bool) -> Option<String> {
    let v = f.string("email", required, 1, 254)?;
    if usuario::is_valid_email(&v) {
        Some(v)
    } else {
        f.errors.push(FieldError::new(
            "email",
            "invalid_format",
            "email must be a valid address",
        ));
        None
    }
}

fn dni(f: &mut Fields<'_>, required: bool) -> Option<String> {
    f.pattern(
        "dni",
        required,
        str::to_string,
        usuario::is_valid_dni,
        "5-20 characters of A-Z, a-z, 0-9 and -",
    )
}

/// `None` = absent (unchanged), `Some(None)` = null (cleared).
fn telefono(f: &mut Fields<'_>, body: &Map<String, Value>) -> Option<Option<String>> {
    match body.get("telefono") {
        None => return None,
        Some(Value::Null) => return Some(None),
        Some(_) => {}
    }
    f.pattern(
        "telefono",
        false,
        str::to_string,
        usuario::is_valid_telefono,
        r"^\+?[0-9 ()-]{6,20}$",
    )
    .map(Some)
}

/// 8–128 characters, untrimmed.
fn password(f: &mut Fields<'_>, body: &Map<String, Value>, field: &str, required: bool) -> Option<String> {
    match body.get(field) {
        None | Some(Value::Null) if required => {
            f.errors
                .push(FieldError::new(field, "required", format!("{field} is required")));
            None
        }
        None | Some(Value::Null) => None,
        Some(Value::String(p)) if usuario::is_valid_password(p) => Some(p.clone()),
        Some(Value::String(_)) => {
            let message = format!("{field} must have {PASSWORD_MIN} to {PASSWORD_MAX} characters");
            f.errors.push(FieldError::new(field, "invalid_length", message));
            None
        }
        Some(_) => {
            f.errors.push(FieldError::new(
                field,
                "invalid_type",
                format!("{field} must be a string"),
            ));
            None
        }
    }
}

/// A required non-empty string, checked against the stored hash by the worker.
fn password_present(f: &mut Fields<'_>, body: &Map<String, Value>, field: &str) -> Option<String> {
    match body.get(field) {
        Some(Value::String(p)) if !p.is_empty() && p.chars().count() <= 1024 => Some(p.clone()),
        Some(Value::String(p)) if !p.is_empty() => {
            f.errors
                .push(FieldError::new(field, "invalid_length", format!("{field} is too long")));
            None
        }
        Some(Value::String(_)) | None | Some(Value::Null) => {
            f.errors.push(FieldError::new(
                field,
                "required",
                format!("{field} is required to change the password"),
            ));
            None
        }
        Some(_) => {
            f.errors.push(FieldError::new(
                field,
                "invalid_type",
                format!("{field} must be a string"),
            ));
            None
        }
    }
}
