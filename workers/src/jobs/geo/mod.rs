//! The `geo` lane: read-only PostGIS queries.

pub mod map_view;
pub mod nearest;

use gad_shared::envelope::JobEnvelope;
use gad_shared::job::JobResult;

use super::{HandlerContext, HandlerError};

pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    match job.kind.as_str() {
        "geo.nearest" => nearest::run(ctx, &job.payload).await,
        "geo.map_view" => map_view::run(ctx, &job.payload).await,
        _ => Err(HandlerError::UnsupportedKind(job.kind.clone())),
    }
}
