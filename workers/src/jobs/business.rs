//! The frame of every business job: its transaction with the job guard and
//! the actor, the typed payload, and the commit that records the job's success
//! together with its effects (so a redelivery changes nothing twice).

use gad_shared::envelope::JobEnvelope;
use gad_shared::error_body::FieldError;
use gad_shared::job::JobResult;
use serde::de::DeserializeOwned;

use super::{HandlerContext, HandlerError};
use crate::effects::actor::{self, Actor};
use crate::effects::{Tx, job_guard};

pub enum Begun {
    /// An earlier delivery committed: its result is the answer.
    Done(JobResult),
    Run(Tx<'static>, Actor),
}

/// Transaction, job guard and actor. A job with no submitter, or whose
/// submitter is gone or disabled, may do nothing.
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

/// The typed payload of a job; a payload that does not fit is the publisher's bug.
pub fn payload<T: DeserializeOwned>(job: &JobEnvelope) -> Result<T, HandlerError> {
    serde_json::from_value(job.payload.clone())
        .map_err(|e| HandlerError::Invalid(vec![FieldError::new("payload", "invalid", e.to_string())]))
}
