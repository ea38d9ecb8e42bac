//! What every usuario job does first and last: the transaction with its job
//! guard and actor, the target row under lock, and the commit.

use gad_shared::domain::usuario::{COLUMNS, Usuario};
use gad_shared::envelope::JobEnvelope;
use gad_shared::error_body::FieldError;
use gad_shared::job::JobResult;
use serde::de::DeserializeOwned;

use super::super::{HandlerContext, HandlerError};
use crate::effects::actor::{self, Actor};
use crate::effects::{Tx, job_guard};

pub enum Begun {
    /// An earlier delivery committed: its result is the answer.
    Done(JobResult),
    Run(Tx<'static>, Actor),
}

/// A job with no submitter, or whose submitter is gone or disabled, may do nothing.
pub async fn begin(ctx: &HandlerContext, job: &JobEnvelope) -> Result<Begun, HandlerError> {
    let mut tx = ctx.db.begin().await?;
    if let Some(prior) = job_guard::lock(&mut tx, job.job_id).await? {
        return Ok(Begun::Done(prior));
    }
    let Some(usuario) = job.submitted_by else {
        return Err(HandlerError::forbidden());
    };
    let actor = actor::load(&mut tx, usuario)
        .await?
        .ok_or_else(HandlerError::forbidden)?;
    Ok(Begun::Run(tx, actor))
}

/// Records the job's success with its effects and commits both.
pub async fn finish(mut tx: Tx<'static>, job: &JobEnvelope, result: JobResult) -> Result<JobResult, HandlerError> {
    job_guard::complete(&mut tx, job.job_id, &result).await?;
    tx.commit().await?;
    Ok(result)
}

/// The typed payload; one that does not fit is the publisher's bug.
pub fn payload<T: DeserializeOwned>(job: &JobEnvelope) -> Result<T, HandlerError> {
    serde_json::from_value(job.payload.clone())
        .map_err(|e| HandlerError::Invalid(vec![FieldError::new("payload", "invalid", e.to_string())]))
}

/// A live usuario, with its password hash, locked for the rest of the job.
#[derive(Debug, sqlx::FromRow)]
pub struct Target {
    #[sqlx(flatten)]
    pub usuario: Usuario,
    pub hashed_password: String,
}

pub async fn lock(tx: &mut Tx<'_>, usuario_id: i64) -> Result<Target, HandlerError> {
    let sql =
        format!("SELECT {COLUMNS}, hashed_password FROM usuarios WHERE id = $1 AND deleted_at IS NULL FOR UPDATE");
    sqlx::query_as::<_, Target>(sqlx::AssertSqlSafe(sql))
        .bind(usuario_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| HandlerError::not_found("usuario"))
}

/// Password hashing and checking are slow on purpose: off the async runtime.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, HandlerError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| HandlerError::rejected(500, "internal_error", format!("password work failed: {e}")))
}

pub async fn hash_password(password: String) -> Result<String, HandlerError> {
    blocking(move || gad_shared::password::hash(&password))
        .await?
        .map_err(|e| HandlerError::rejected(500, "internal_error", e.to_string()))
}
