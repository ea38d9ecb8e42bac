//! `import.*` jobs, on their own `import` lane so a bulk load never delays
//! the others. They come from `gad import` or from any publisher following
//! the README's wire format, and run as the system: no nivel is checked, and
//! the envelope's `submitted_by` (normally none) is the audit actor.
//!
//! Each kind is keyed by what an agency's files know a row by, so that running
//! a job twice changes nothing twice:
//! - [`efectivos`]: upsert by `codigo_interno`, the usuario named by email or dni;
//! - [`tareas`]: created when no tarea has the `codigo` yet, usuarios named by email;
//! - [`locations`]: by `codigo_interno` and `recorded_at`; an older one is ignored.

pub mod efectivos;
pub mod locations;
pub mod tareas;

use gad_shared::domain::usuario::{is_valid_dni, is_valid_email};
use gad_shared::envelope::JobEnvelope;
use gad_shared::error_body::FieldError;
use gad_shared::job::JobResult;

use super::{HandlerContext, HandlerError};
use crate::effects::Tx;

pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    match job.kind.as_str() {
        "import.efectivos" => efectivos::run(ctx, job).await,
        "import.tareas" => tareas::run(ctx, job).await,
        "import.locations" => locations::run(ctx, job).await,
        "import.noop" => Ok(JobResult {
            http_status: 200,
            body: serde_json::json!({}),
        }),
        _ => Err(HandlerError::UnsupportedKind(job.kind.clone())),
    }
}

/// Trims an email field and adds an error when it is not an address (§7).
fn check_email(errors: &mut Vec<FieldError>, field: &str, value: &mut Option<String>) {
    *value = value.take().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    if value.as_deref().is_some_and(|v| !is_valid_email(v)) {
        errors.push(FieldError::new(
            field,
            "invalid_format",
            format!("{field} must be a valid address"),
        ));
    }
}

/// Trims a dni field and adds an error when it breaks §7 (5–20 of `[A-Za-z0-9-]`).
fn check_dni(errors: &mut Vec<FieldError>, field: &str, value: &mut Option<String>) {
    *value = value.take().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    if value.as_deref().is_some_and(|v| !is_valid_dni(v)) {
        errors.push(FieldError::new(
            field,
            "invalid_format",
            format!("{field} must be 5-20 of A-Z, a-z, 0-9 and -"),
        ));
    }
}

/// The live usuario with this email (case-insensitive) and, when given, dni.
async fn usuario_by(tx: &mut Tx<'_>, email: Option<&str>, dni: Option<&str>) -> Result<Option<i64>, sqlx::Error> {
    if email.is_none() && dni.is_none() {
        return Ok(None);
    }
    sqlx::query_scalar(
        "SELECT id FROM usuarios
         WHERE deleted_at IS NULL
           AND ($1::text IS NULL OR lower(email) = lower($1))
           AND ($2::text IS NULL OR dni = $2)",
    )
    .bind(email)
    .bind(dni)
    .fetch_optional(&mut **tx)
    .await
}
