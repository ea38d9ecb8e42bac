//! Turning a request into a job on `GAD_JOBS`, for every front door (the
//! HTTP API in ingress, the Telegram bot in the broadcaster). A job is
//! accepted only when its broker confirmed it (a JetStream PubAck or a
//! RabbitMQ publisher confirm, [`crate::queue`]); its `queued`
//! status is written to the status bucket alongside, where a poll finds it
//! at once.

use async_nats::HeaderMap;
use async_nats::jetstream::kv;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use chrono::Utc;
use uuid::Uuid;

use crate::envelope::{self, CONTENT_TYPE_MSGPACK, ClientInfo, ENVELOPE_VERSION, JobEnvelope, headers};
use crate::job::{JobRecord, JobStatus, KindSpec, kind_spec};
use crate::queue::{PublishFailure, Publisher};
use crate::topology::Topology;
use crate::trace_context::TraceParent;

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("queue unavailable: {0}")]
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
    /// The usuario on whose behalf the job runs; `None` = system.
    pub submitted_by: Option<i64>,
    /// Who sent the request, for the audit row.
    pub client: Option<ClientInfo>,
}

/// Where jobs go: the broker (through `publisher`) and the status bucket.
pub struct JobQueue<'a> {
    pub publisher: &'a Publisher,
    pub topology: &'a Topology,
    pub status_bucket: &'a kv::Store,
}

/// A job ready to go: the message for `GAD_JOBS` and the `queued` status
/// record written beside it. `gad import` publishes many at once from these.
pub struct Prepared {
    pub spec: &'static KindSpec,
    pub subject: String,
    pub headers: HeaderMap,
    pub payload: Bytes,
    pub record: JobRecord,
}

impl Prepared {
    /// The JetStream message: body and headers, the job id as `Nats-Msg-Id`.
    pub fn message(&self) -> PublishMessage {
        PublishMessage::build()
            .payload(self.payload.clone())
            .headers(self.headers.clone())
            .message_id(self.record.job_id.to_string())
    }

    /// `record` as the status bucket stores it; encoded only for those who
    /// write it (`gad import` does not by default).
    pub fn status(&self) -> Result<Bytes, SubmitError> {
        Ok(envelope::encode(&self.record)?)
    }
}

/// Builds the envelope, headers and status record of `job`.
pub fn prepare(topology: &Topology, job: NewJob) -> Result<Prepared, SubmitError> {
    let spec = kind_spec(job.kind).ok_or_else(|| SubmitError::UnknownKind(job.kind.to_string()))?;
    let job_id = job.job_id;
    let now = Utc::now();
    let env = JobEnvelope {
        v: ENVELOPE_VERSION,
        job_id,
        kind: spec.name.to_string(),
        submitted_by: job.submitted_by,
        submitted_at: now,
        request_id: job.request_id,
        client: job.client,
        payload: job.payload,
    };
    let record = JobRecord {
        job_id,
        kind: spec.name.to_string(),
        status: JobStatus::Queued,
        attempts: 0,
        max_attempts: spec.max_attempts,
        submitted_by: job.submitted_by,
        payload_summary: job.summary,
        result: None,
        error: None,
        created_at: now,
        started_at: None,
        finished_at: None,
    };
    let body = envelope::encode(&env)?;

    let mut hdrs = HeaderMap::new();
    hdrs.insert(headers::CONTENT_TYPE, CONTENT_TYPE_MSGPACK);
    if let Some(user) = job.submitted_by {
        hdrs.insert(headers::SUBMITTER, user.to_string().as_str());
    }
    // A job submitted outside a request (the bot, an importer) starts its own trace.
    let trace = crate::trace_context::outgoing().unwrap_or_else(TraceParent::root);
    hdrs.insert(headers::TRACEPARENT, trace.to_string().as_str());
    Ok(Prepared {
        spec,
        subject: topology.job_subject(spec),
        headers: hdrs,
        payload: body,
        record,
    })
}

/// Publishes `job` and records its `queued` status; returns the job's record.
pub async fn submit(queue: &JobQueue<'_>, job: NewJob) -> Result<JobRecord, SubmitError> {
    let prepared = prepare(queue.topology, job)?;
    let status_value = prepared.status()?;
    let Prepared {
        spec,
        subject,
        headers,
        payload,
        record,
    } = prepared;
    let job_id = record.job_id;
    let key = job_id.to_string();

    let publish = queue.publisher.publish(&subject, &headers, &payload, &key);
    // `create` never overwrites: a worker fast enough to have written
    // `running` or a result already must not be set back to `queued`.
    let status_bucket = queue.status_bucket;
    let status = status_bucket.create(&key, status_value);
    let (published, status) = tokio::join!(publish, status);
    if let Err(e) = published {
        let _ = status_bucket.delete(&key).await;
        return Err(e.into());
    }
    if let Err(e) = status {
        // A worker that got the job before the broker's confirm came back
        // has written a newer status already (common on RabbitMQ): as it should.
        if e.kind() == kv::CreateErrorKind::AlreadyExists {
            tracing::debug!(%job_id, "a worker recorded the job's status first");
        } else {
            tracing::warn!(%job_id, error = %e, "queued status not recorded; the worker will record it");
        }
    }
    metrics::counter!(crate::metric_names::JOBS_SUBMITTED, "kind" => spec.name, "lane" => spec.group).increment(1);
    Ok(record)
}

impl From<PublishFailure> for SubmitError {
    fn from(e: PublishFailure) -> Self {
        match e {
            PublishFailure::QueueFull => SubmitError::QueueFull,
            PublishFailure::Unavailable(reason) => SubmitError::Unavailable(reason),
        }
    }
}
