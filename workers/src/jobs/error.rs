//! Handler errors and whether each is worth retrying.

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
            },
            HandlerError::Database(e) if is_transient(&e) => Outcome::Transient {
                error: error(503, "dependency_unavailable", "the database is unavailable".into()),
                retry_after: None,
            },
            HandlerError::Database(e) => {
                tracing::error!(error = %e, "permanent database error");
                Outcome::Failed(error(500, "internal_error", "internal error".into()))
            }
        }
    }
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
