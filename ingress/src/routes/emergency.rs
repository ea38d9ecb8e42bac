//! `POST /api/v1/tasks/emergency` (§4): any active usuario reports an
//! emergency; the `emergency` lane dispatches the nearest free unit.

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use gad_shared::error_body::FieldError;
use gad_shared::http_error::{ApiError, current_request_id};
use serde_json::{Map, Value, json};

use crate::body::JsonObject;
use crate::caller::Authenticated;
use crate::job_answer::submit_and_answer;
use crate::prefer::Prefer;
use crate::state::AppState;
use crate::submit::NewJob;
use crate::validate::Fields;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/tasks/emergency", post(report))
}

/// `^\+?[0-9 ()-]{6,20}$` (§7 telefono).
pub fn is_valid_telefono(v: &str) -> bool {
    let digits = v.strip_prefix('+').unwrap_or(v);
    (6..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit() || b" ()-".contains(&b))
}

#[utoipa::path(post, path = "/api/v1/tasks/emergency", tag = "emergency",
    request_body = crate::openapi::bodies::EmergencyReport,
    responses((status = 201, description = "The emergencia tarea, with the nearest free unit dispatched",
        body = crate::openapi::answers::Dispatch), (status = 202, description = "Queued; follow the job", body = crate::openapi::answers::Accepted),
        (status = 404, description = "`no_efectivo_available`")))]
async fn report(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let prefer = Prefer::parse(
        &headers,
        state.settings.ingress.max_wait,
        Some(crate::routes::LEGACY_WAIT_S),
    );
    let mut f = Fields::new(&body);
    if let Err(e) = &prefer {
        f.errors.push(e.clone());
    }
    let lat = f.number("lat", true, -90.0, 90.0);
    let lng = f.number("lng", true, -180.0, 180.0);
    let telegram_id = f.integer("telegram_id", false, 1, i64::MAX);
    let descripcion = f.string("descripcion", false, 0, 1000).filter(|d| !d.is_empty());
    let reporter = reporter(&body, &mut f.errors);
    if !f.has("telegram_id") && !f.has("reporter") {
        f.errors.push(FieldError::new(
            "reporter",
            "required",
            "telegram_id or reporter is required",
        ));
    }
    f.finish()?;
    let prefer = prefer.map_err(|e| ApiError::validation(vec![e]))?;
    let payload = json!({
        "lat": lat, "lng": lng, "telegram_id": telegram_id, "reporter": reporter, "descripcion": descripcion,
    });
    // The reporter is a member of the public: the summary keeps the position only.
    let summary = json!({ "lat": lat, "lng": lng, "telegram_id": telegram_id });
    let job = NewJob {
        job_id: uuid::Uuid::now_v7(),
        kind: "emergency.dispatch",
        payload,
        summary,
        request_id: current_request_id(),
    };
    submit_and_answer(&state, &caller, job, prefer).await
}

/// `reporter: {nombre? ≤ 100, telefono? (§7)}` with at least one of them;
/// errors are named `reporter.<field>`.
fn reporter(body: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Option<Value> {
    let raw = match body.get("reporter") {
        None | Some(Value::Null) => return None,
        Some(Value::Object(r)) => r,
        Some(_) => {
            errors.push(FieldError::new(
                "reporter",
                "invalid_type",
                "reporter must be an object",
            ));
            return None;
        }
    };
    let mut f = Fields::new(raw);
    let nombre = f.string("nombre", false, 0, 100).filter(|n| !n.is_empty());
    let telefono = f.string("telefono", false, 0, 20).filter(|t| !t.is_empty());
    if telefono.as_deref().is_some_and(|t| !is_valid_telefono(t)) {
        f.errors.push(FieldError::new(
            "telefono",
            "invalid_format",
            "telefono must match ^\\+?[0-9 ()-]{6,20}$",
        ));
    }
    let ok = f.errors.is_empty();
    errors.extend(f.errors.into_iter().map(|mut e| {
        e.field = format!("reporter.{}", e.field);
        e
    }));
    if !ok {
        return None;
    }
    if nombre.is_none() && telefono.is_none() {
        errors.push(FieldError::new(
            "reporter",
            "required",
            "reporter needs nombre or telefono",
        ));
        return None;
    }
    Some(json!({ "nombre": nombre, "telefono": telefono }))
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(report))]
pub struct Api;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telefono_rule() {
        assert!(is_valid_telefono("+54 11 4444-5555"));
        assert!(is_valid_telefono("(011) 4444"));
        assert!(!is_valid_telefono("12345"));
        assert!(!is_valid_telefono("call me"));
        assert!(!is_valid_telefono(&"1".repeat(21)));
    }

    #[test]
    fn reporter_needs_a_name_or_a_phone_and_names_nested_fields() {
        let body = json!({ "reporter": { "nombre": "x".repeat(101), "telefono": "abc" } });
        let mut errors = Vec::new();
        assert_eq!(reporter(body.as_object().unwrap_or(&Map::new()), &mut errors), None);
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["reporter.nombre", "reporter.telefono"]);
        let body = json!({ "reporter": {} });
        let mut errors = Vec::new();
        assert_eq!(reporter(body.as_object().unwrap_or(&Map::new()), &mut errors), None);
        assert_eq!(errors.len(), 1);
        let body = json!({ "reporter": { "nombre": " Ana " } });
        let mut errors = Vec::new();
        assert_eq!(
            reporter(body.as_object().unwrap_or(&Map::new()), &mut errors),
            Some(json!({ "nombre": "Ana", "telefono": null }))
        );
    }
}
