//! Turning a validated request into a job on `GAD_JOBS`, on behalf of the
//! authenticated caller; the publishing itself is `gad_shared::submit`,
//! which the Telegram bot uses too.

use gad_shared::auth::Caller;
use gad_shared::job::JobRecord;
use gad_shared::queue::Publisher;
use gad_shared::submit::{self as shared, JobQueue};
use uuid::Uuid;

use crate::nats::Nats;

pub use gad_shared::submit::SubmitError;

pub struct NewJob {
    /// Chosen by the caller so a waiter can be registered before publishing.
    pub job_id: Uuid,
    pub kind: &'static str,
    pub payload: serde_json::Value,
    /// Redacted inputs shown on the job (no secrets).
    pub summary: serde_json::Value,
    pub request_id: Option<String>,
}

/// Publishes `job` and records its `queued` status; returns the job's record.
pub async fn submit(
    nats: &Nats,
    caller: &Caller,
    publisher: &Publisher,
    job: NewJob,
) -> Result<JobRecord, SubmitError> {
    let status_bucket = nats
        .status_bucket()
        .ok_or_else(|| SubmitError::Unavailable("not bootstrapped".into()))?;
    let queue = JobQueue {
        publisher,
        topology: &nats.topology,
        status_bucket,
    };
    let job = shared::NewJob {
        job_id: job.job_id,
        kind: job.kind,
        payload: job.payload,
        summary: job.summary,
        request_id: job.request_id,
        submitted_by: Some(caller.user_id),
        client: crate::client::current(),
    };
    shared::submit(&queue, job).await
}
