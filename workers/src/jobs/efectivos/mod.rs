//! `efectivo.*` jobs (§5, §6.3) on the `tasks` lane: create, edit and
//! soft-delete units (nivel 3), and the position and availability a unit
//! reports itself (or a supervisor reports for it).

pub mod access;
pub mod create;
pub mod delete;
pub mod disponibilidad;
pub mod events;
pub mod location;
pub mod update;

use gad_shared::envelope::JobEnvelope;
use gad_shared::error_body::FieldError;
use gad_shared::job::{JobError, JobResult};
use serde::de::DeserializeOwned;

use super::{HandlerContext, HandlerError};

pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    match job.kind.as_str() {
        "efectivo.create" => create::run(ctx, job).await,
        "efectivo.update" => update::run(ctx, job).await,
        "efectivo.delete" => delete::run(ctx, job).await,
        "efectivo.location" => location::run(ctx, job).await,
        "efectivo.disponibilidad" => disponibilidad::run(ctx, job).await,
        _ => Err(HandlerError::UnsupportedKind(job.kind.clone())),
    }
}

/// The payload as `T`, or a 422 naming what is wrong with it.
pub(crate) fn parse<T: DeserializeOwned>(payload: &serde_json::Value) -> Result<T, HandlerError> {
    serde_json::from_value(payload.clone())
        .map_err(|e| HandlerError::Invalid(vec![FieldError::new("payload", "invalid", e.to_string())]))
}

/// A 422 with the §7 `details.fields` list, for rules the handler checks
/// against the database (a usuario that does not exist, …).
pub(crate) fn field_rejection(field: &str, code: &str, message: &str) -> HandlerError {
    HandlerError::Rejected(JobError {
        http_status: 422,
        error: "validation_failed".into(),
        message: message.into(),
        details: Some(serde_json::json!({ "fields": [FieldError::new(field, code, message)] })),
    })
}

/// `^[A-Z0-9_-]{2,50}$` (§7), applied after upper-casing.
pub(crate) fn is_valid_codigo_interno(v: &str) -> bool {
    (2..=50).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Text fields of §7: at most `max` characters.
pub(crate) fn check_len(errors: &mut Vec<FieldError>, field: &str, value: Option<&str>, max: usize) {
    if value.is_some_and(|v| v.chars().count() > max) {
        errors.push(FieldError::new(
            field,
            "invalid_length",
            format!("{field} must have at most {max} characters"),
        ));
    }
}

pub(crate) fn check_lat_lng(errors: &mut Vec<FieldError>, lat: f64, lng: f64) {
    if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
        errors.push(FieldError::new("lat", "out_of_range", "lat must be between -90 and 90"));
    }
    if !(lng.is_finite() && (-180.0..=180.0).contains(&lng)) {
        errors.push(FieldError::new(
            "lng",
            "out_of_range",
            "lng must be between -180 and 180",
        ));
    }
}
