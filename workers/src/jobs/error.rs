//! Handler errors and whether each is worth retrying.

use std::time::Duration;

use gad_shared::error_body::FieldError;
use gad_shared::job::JobError;

use crate::outcome::Outcome;

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The payload does not satisfy the kind's rules (a publisher bug or a
    /// hand-made job): retrying cannot help.
    #[error("invalid payload")]
    Invalid(Vec<FieldError>),
    #[error("unsupported job kind {0}")]
    UnsupportedKind(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("deadline exceeded")]
    Deadline,
    /// A deterministic business outcome (404, 409, 422…): the job fails at once.
    #[error("rejected: {}", .0.error)]
    Rejected(JobError),
    /// `cause`, from a job that is worthless after `left` more time: if it
    /// is retried, the retry comes within `left`.
    #[error("{cause}")]
    Within { cause: Box<HandlerError>, left: Duration },
}

impl HandlerError {
    pub fn rejected(http_status: u16, code: &str, message: impl Into<String>) -> Self {
        HandlerError::Rejected(JobError {
            http_status,
            error: code.into(),
            message: message.into(),
            details: None,
        })
    }
    pub fn not_found(what: &str) -> Self {
        Self::rejected(404, "not_found", format!("{what} not found"))
    }
    pub fn forbidden() -> Self {
        Self::rejected(403, "forbidden", "your role does not allow this")
    }
    pub fn conflict(code: &str, message: impl Into<String>, details: serde_json::Value) -> Self {
        HandlerError::Rejected(JobError {
            http_status: 409,
            error: code.into(),
            message: message.into(),
            details: Some(details),
        })
    }
}

impl HandlerError {
    pub fn into_outcome(self) -> Outcome {
        let error = |http_status: u16, code: &str, message: String| JobError {
            http_status,
            error: code.into(),
            message,
            details: None,
        };
        match self {
            HandlerError::Invalid(fields) => Outcome::Failed(JobError {
                details: Some(serde_json::json!({ "fields": fields })),
                ..error(422, "validation_failed", "invalid job payload".into())
            }),
            HandlerError::UnsupportedKind(kind) => {
                Outcome::Failed(error(422, "validation_failed", format!("unsupported job kind {kind}")))
            }
            HandlerError::Deadline => Outcome::Transient {
                error: error(503, "dependency_unavailable", "the job ran past its deadline".into()),
                retry_after: None,
                not_after: None,
            },
            HandlerError::Within { cause, left } => match cause.into_outcome() {
                Outcome::Transient { error, retry_after, .. } => Outcome::Transient {
                    error,
                    retry_after,
                    not_after: Some(left),
                },
                other => other,
            },
            HandlerError::Rejected(e) => Outcome::Failed(e),
            HandlerError::Database(e) if is_transient(&e) => Outcome::Transient {
                error: error(503, "dependency_unavailable", "the database is unavailable".into()),
                retry_after: None,
                not_after: None,
            },
            HandlerError::Database(e) => match constraint_violation(&e) {
                Some(rejection) => Outcome::Failed(rejection),
                None => {
                    tracing::error!(error = %e, "permanent database error");
                    Outcome::Failed(error(500, "internal_error", "internal error".into()))
                }
            },
        }
    }
}

/// Constraint violations are the client's problem, reported without internals
/// (§7): unique → 409 `duplicate`, exclusion → 409 `schedule_overlap`,
/// foreign key and CHECK → 422 on the field the constraint guards.
pub fn constraint_violation(e: &sqlx::Error) -> Option<JobError> {
    let sqlx::Error::Database(db) = e else { return None };
    let code = db.code()?;
    let constraint = db.constraint().unwrap_or_default();
    let field = constraint_field(db.table().unwrap_or_default(), constraint);
    let (http_status, error, message, details) = match code.as_ref() {
        "23505" => (
            409,
            "duplicate",
            format!("{field} already exists"),
            serde_json::json!({ "field": field }),
        ),
        "23P01" => (
            409,
            "schedule_overlap",
            "overlaps another active task of the delegado".to_string(),
            serde_json::json!({}),
        ),
        "23503" => (
            422,
            "validation_failed",
            format!("{field} does not exist"),
            fields(&field, "not_found"),
        ),
        "23514" => (
            422,
            "validation_failed",
            format!("{field} is not valid"),
            fields(&field, "invalid"),
        ),
        _ => return None,
    };
    Some(JobError {
        http_status,
        error: error.into(),
        message,
        details: Some(details),
    })
}

fn fields(field: &str, code: &str) -> serde_json::Value {
    serde_json::json!({ "fields": [{ "field": field, "code": code, "message": format!("{field} is {code}") }] })
}

/// `uq_tareas_codigo` → `codigo`, `ux_usuarios_email_lower` → `email`,
/// `tareas_delegado_usuario_id_fkey` → `delegado_usuario_id`, `chk_titulo` → `titulo`.
fn constraint_field(table: &str, constraint: &str) -> String {
    let mut name = constraint;
    for prefix in ["uq_", "ux_", "chk_", "ex_"] {
        name = name.strip_prefix(prefix).unwrap_or(name);
    }
    let table_prefix = format!("{table}_");
    name = name.strip_prefix(table_prefix.as_str()).unwrap_or(name);
    name = name.strip_suffix("_fkey").unwrap_or(name);
    name = name.strip_suffix("_lower").unwrap_or(name);
    name.to_string()
}

/// Connection trouble, pool exhaustion, timeouts, serialization failures and
/// deadlocks pass with time; constraint violations and bad SQL do not.
pub fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            // 40001 serialization, 40P01 deadlock, 57014 statement timeout,
            // 08* connection, 53* resources, 57P0* server shutting down.
            c == "40001"
                || c == "40P01"
                || c == "57014"
                || c.starts_with("08")
                || c.starts_with("53")
                || c.starts_with("57P0")
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraint_names_map_to_the_fields_they_guard() {
        assert_eq!(constraint_field("tareas", "uq_tareas_codigo"), "codigo");
        assert_eq!(constraint_field("usuarios", "ux_usuarios_email_lower"), "email");
        assert_eq!(
            constraint_field("tareas", "tareas_delegado_usuario_id_fkey"),
            "delegado_usuario_id"
        );
        assert_eq!(constraint_field("tareas", "chk_titulo"), "titulo");
    }

    #[test]
    fn connection_trouble_is_transient_and_bad_input_is_not() {
        assert!(is_transient(&sqlx::Error::PoolTimedOut));
        assert!(matches!(
            HandlerError::Database(sqlx::Error::PoolTimedOut).into_outcome(),
            Outcome::Transient { .. }
        ));
        assert!(matches!(
            HandlerError::Deadline.into_outcome(),
            Outcome::Transient { .. }
        ));
        assert!(!is_transient(&sqlx::Error::RowNotFound));
        let invalid = HandlerError::Invalid(vec![FieldError::new("lat", "required", "lat is required")]).into_outcome();
        assert!(matches!(invalid, Outcome::Failed(ref e) if e.http_status == 422 && e.error == "validation_failed"));
    }
}
