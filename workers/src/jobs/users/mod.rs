//! Usuario jobs (§6.3, tasks lane): `user.create`, `user.update`,
//! `user.delete` and `telegram.unlink`. Each commits its change, its audit row
//! and its job completion in one transaction; a change that must end the
//! usuario's tokens then mirrors `tokens_validos_desde` into the revocation bucket.

pub mod access;
pub mod create;
pub mod delete;
pub mod fields;
pub mod revocation;
pub mod unlink;
pub mod update;

use gad_shared::envelope::JobEnvelope;
use gad_shared::job::JobResult;

use super::{HandlerContext, HandlerError};

pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    match job.kind.as_str() {
        "user.create" => create::run(ctx, job).await,
        "user.update" => update::run(ctx, job).await,
        "user.delete" => delete::run(ctx, job).await,
        "telegram.unlink" => unlink::run(ctx, job).await,
        _ => Err(HandlerError::UnsupportedKind(job.kind.clone())),
    }
}
