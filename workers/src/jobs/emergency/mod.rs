//! The `emergency` lane (§4): dispatch of the nearest free unit, and the
//! re-dispatch used when a unit declines or does not answer in time.

pub mod alert;
pub mod config;
pub mod dispatch;
pub mod notify;
pub mod pick;
pub mod redispatch;
pub mod task_events;

use gad_shared::envelope::JobEnvelope;
use gad_shared::job::JobResult;

pub use redispatch::redispatch;

use super::{HandlerContext, HandlerError};

pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    match job.kind.as_str() {
        "emergency.dispatch" => dispatch::run(ctx, job).await,
        _ => Err(HandlerError::UnsupportedKind(job.kind.clone())),
    }
}
