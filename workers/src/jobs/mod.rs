//! Job handlers, one file per kind, grouped by worker group.

pub mod business;
pub mod efectivos;
pub mod emergency;
pub mod error;
pub mod geo;
pub mod import;
pub mod tasks;
pub mod users;

use gad_shared::envelope::JobEnvelope;
use gad_shared::job::JobResult;
use gad_shared::redis_conn::Redis;
use sqlx::PgPool;

pub use error::HandlerError;

/// What handlers may use.
#[derive(Clone)]
pub struct HandlerContext {
    /// Ordinary SQL (statement timeout `postgres.statement_timeout`).
    pub db: PgPool,
    /// PostGIS KNN queries (statement timeout `postgres.knn_timeout`).
    pub knn_db: PgPool,
    /// Soft: cache work is skipped when Redis is down, never the job.
    pub redis: Redis,
    /// Revocation bucket: `u.<id>` entries bumped when a usuario's tokens must die.
    pub revocation: async_nats::jetstream::kv::Store,
}

/// Runs the handler of `job.kind`; each family routes its own kinds.
pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    let family = job.kind.split('.').next().unwrap_or_default();
    match (family, job.kind.as_str()) {
        ("geo", _) => geo::run(ctx, job).await,
        ("task", _) => tasks::run(ctx, job).await,
        ("user", _) | ("telegram", _) => users::run(ctx, job).await,
        ("efectivo", _) => efectivos::run(ctx, job).await,
        ("emergency", _) => emergency::run(ctx, job).await,
        ("import", _) => import::run(ctx, job).await,
        _ => Err(HandlerError::UnsupportedKind(job.kind.clone())),
    }
}
