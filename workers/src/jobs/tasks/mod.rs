//! The `task.*` jobs (§3, §6.3): one file per kind, plus what they share:
//! [`access`] (transaction, actor, row lock, who may act), [`fields`]
//! (payload rules), [`events`] and [`notify`] (outbox rows), and
//! [`release`] (holds on efectivos, §3 release rule).

pub mod access;
pub mod assign;
pub mod create;
pub mod delete;
pub mod events;
pub mod fields;
pub mod notify;
pub mod release;
pub mod respond;
pub mod transition;
pub mod unassign;
pub mod update;

use gad_shared::envelope::JobEnvelope;
use gad_shared::job::JobResult;

use super::{HandlerContext, HandlerError};

pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    match job.kind.as_str() {
        "task.create" => create::run(ctx, job).await,
        "task.update" => update::run(ctx, job).await,
        "task.delete" => delete::run(ctx, job).await,
        "task.transition" => transition::run(ctx, job).await,
        "task.assign" => assign::run(ctx, job).await,
        "task.unassign" => unassign::run(ctx, job).await,
        "task.respond" => respond::run(ctx, job).await,
        _ => Err(HandlerError::UnsupportedKind(job.kind.clone())),
    }
}
