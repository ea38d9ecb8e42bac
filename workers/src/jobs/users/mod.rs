//! `users` job handlers (filled in by the domain work).

use gad_shared::envelope::JobEnvelope;
use gad_shared::job::JobResult;

use super::{HandlerContext, HandlerError};

pub async fn run(_ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    Err(HandlerError::UnsupportedKind(job.kind.clone()))
}
