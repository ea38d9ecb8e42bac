//! Turning a validated request into a job on `GAD_JOBS`. A job is accepted
//! only when JetStream acknowledged it (PubAck); its `queued` status is
//! written to the status bucket alongside, where a poll finds it at once.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use chrono::Utc;
use gad_shared::auth::Caller;
use gad_shared::envelope::{self, CONTENT_TYPE_MSGPACK, ENVELOPE_VERSION, JobEnvelope, headers};
use gad_shared::job::{JobRecord, JobStatus, kind_spec};
use uuid::Uuid;

use crate::nats::Nats;

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("NATS unavailable: {0}")]
    Unavailable(String),
    #[error("job stream full")]
    QueueFull,
    #[error("unknown job kind {0}")]
    UnknownKind(String),
    #[error(transparent)]
    Encode(#[from] envelope::EnvelopeError),
}

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
    job: NewJob,
    publish_timeout: Duration,
) -> Result<JobRecord, SubmitError> {
    let spec = kind_spec(job.kind).ok_or_else(|| SubmitError::UnknownKind(job.kind.to_string()))?;
    let status_bucket = nats
        .status_bucket()
        .ok_or_else(|| SubmitError::Unavailable("not bootstrapped".into()))?;
    let job_id = job.job_id;
    let now = Utc::now();
    let env = JobEnvelope {
        v: ENVELOPE_VERSION,
        job_id,
        kind: spec.name.to_string(),
        submitted_by: Some(caller.user_id),
        submitted_at: now,
        request_id: job.request_id,
        client: crate::client::current(),
        payload: job.payload,
    };
    let record = JobRecord {
        job_id,
        kind: spec.name.to_string(),
        status: JobStatus::Queued,
        attempts: 0,
        max_attempts: spec.max_attempts,
        submitted_by: Some(caller.user_id),
        payload_summary: job.summary,
        result: None,
        error: None,
        created_at: now,
        started_at: None,
        finished_at: None,
    };
    let body = envelope::encode(&env)?;
    let status_value = envelope::encode(&record)?;

    let mut hdrs = HeaderMap::new();
    hdrs.insert(headers::CONTENT_TYPE, CONTENT_TYPE_MSGPACK);
    hdrs.insert(headers::SUBMITTER, caller.user_id.to_string().as_str());
    let message = PublishMessage::build()
        .payload(body)
        .headers(hdrs)
        .message_id(job_id.to_string());
    let subject = nats.topology.job_subject(spec);

    let publish = async {
        let ack = nats.js.send_publish(subject, message).await?;
        ack.await
    };
    // `create` never overwrites: a worker fast enough to have written
    // `running` or a result already must not be set back to `queued`.
    let key = job_id.to_string();
    let status = status_bucket.create(&key, status_value);
    let (published, status) = tokio::join!(tokio::time::timeout(publish_timeout, publish), status);
    match published {
        Ok(Ok(_ack)) => {}
        Ok(Err(e)) => {
            let _ = status_bucket.delete(&key).await;
            return Err(classify(e));
        }
        Err(_) => {
            let _ = status_bucket.delete(&key).await;
            return Err(SubmitError::Unavailable("no PubAck within the timeout".into()));
        }
    }
    if let Err(e) = status {
        tracing::warn!(%job_id, error = %e, "queued status not recorded; the worker will record it");
    }
    metrics::counter!("jobs_submitted_total", "kind" => spec.name, "lane" => spec.group).increment(1);
    Ok(record)
}

fn classify(e: async_nats::jetstream::context::PublishError) -> SubmitError {
    let text = e.to_string();
    match e.kind() {
        // discard-new streams refuse with "maximum messages/bytes exceeded".
        PublishErrorKind::Other if text.contains("maximum") => SubmitError::QueueFull,
        _ => SubmitError::Unavailable(text),
    }
}
