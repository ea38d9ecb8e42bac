//! Job handlers, one file per kind, grouped by worker group.

pub mod error;
pub mod geo;

use gad_shared::envelope::JobEnvelope;
use gad_shared::job::JobResult;
use sqlx::PgPool;

pub use error::HandlerError;

/// What handlers may use.
#[derive(Clone)]
pub struct HandlerContext {
    /// Ordinary SQL (statement timeout `postgres.statement_timeout`).
    pub db: PgPool,
    /// PostGIS KNN queries (statement timeout `postgres.knn_timeout`).
    pub knn_db: PgPool,
}

/// Runs the handler of `job.kind`.
pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    match job.kind.as_str() {
        "geo.nearest" => geo::nearest::run(ctx, &job.payload).await,
        other => Err(HandlerError::UnsupportedKind(other.to_string())),
    }
}
