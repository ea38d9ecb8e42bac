//! One delivery of one job, from message to acknowledgement.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use gad_shared::envelope::{JobEnvelope, headers};
use gad_shared::job::{JobError, JobRecord, JobStatus, kind_spec};
use gad_shared::topology::Topology;
use tracing::Instrument;

use crate::backoff::full_jitter;
use crate::dead_letter;
use crate::job_store::{JobStore, Started};
use crate::jobs::{self, HandlerContext, HandlerError};
use crate::outcome::{Ack, Outcome, RetryPolicy, settle};

#[derive(Clone)]
pub struct WorkerContext {
    pub store: JobStore,
    pub handlers: HandlerContext,
    pub js: jetstream::Context,
    pub topology: Topology,
    pub policy: RetryPolicy,
}

/// What happened to a message, for tests and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processed {
    Settled(JobStatus),
    /// Already terminal: acknowledged without running again.
    Skipped,
    /// Could not be recorded; left for redelivery.
    Retried,
    Undecodable,
}

pub async fn process_one(ctx: &WorkerContext, msg: jetstream::Message, deadline: Duration) -> Processed {
    let attempt = msg.info().map(|i| i.delivered.max(1) as u32).unwrap_or(1);
    let content_type = msg
        .headers
        .as_ref()
        .and_then(|h| h.get(headers::CONTENT_TYPE))
        .map(|v| v.as_str().to_string());
    let job = match JobEnvelope::decode(&msg.payload, content_type.as_deref()) {
        Ok(job) => job,
        Err(e) => return undecodable(ctx, &msg, attempt, e.to_string()).await,
    };
    let span = tracing::info_span!("job", job_id = %job.job_id, kind = %job.kind, attempt);
    run(ctx, &msg, job, attempt, deadline).instrument(span).await
}

async fn run(
    ctx: &WorkerContext,
    msg: &jetstream::Message,
    job: JobEnvelope,
    attempt: u32,
    deadline: Duration,
) -> Processed {
    let max_attempts = kind_spec(&job.kind).map(|s| s.max_attempts).unwrap_or(1);
    let started = match ctx.store.start(&job, max_attempts, attempt).await {
        Ok(Started::Running(record)) => record,
        Ok(Started::AlreadyFinished(done)) => {
            tracing::debug!("job already finished; announcing its outcome again");
            if let Err(e) = ctx.store.announce(&done).await {
                tracing::warn!(error = %e, "outcome not re-announced");
            }
            acknowledge(msg, Ack::Ack).await;
            return Processed::Skipped;
        }
        Ok(Started::Gone) => {
            acknowledge(msg, Ack::Ack).await;
            return Processed::Skipped;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot record job start; will retry");
            acknowledge(msg, Ack::Nak(full_jitter(attempt, ctx.policy.base, ctx.policy.cap))).await;
            return Processed::Retried;
        }
    };
    let announce = async {
        if let Err(e) = ctx.store.announce(&started).await {
            tracing::warn!(error = %e, "running status not published");
        }
    };
    let handler = tokio::time::timeout(deadline, jobs::run(&ctx.handlers, &job));
    let ((), result) = tokio::join!(announce, handler);
    let outcome = match result {
        Ok(Ok(r)) => Outcome::Succeeded(r),
        Ok(Err(e)) => e.into_outcome(),
        Err(_) => HandlerError::Deadline.into_outcome(),
    };
    let (status, ack) = settle(&outcome, attempt, max_attempts, ctx.policy);
    let record = apply(started, status, &outcome);
    if status == JobStatus::Dead {
        let error = record
            .error
            .clone()
            .unwrap_or_else(|| job_error("dead", "retries exhausted"));
        let id = job.job_id.to_string();
        if let Err(e) =
            dead_letter::write(&ctx.js, &ctx.topology, msg, Some(&id), Some(&job.kind), attempt, &error).await
        {
            // Terminating now would lose the job: let it come back instead.
            tracing::error!(error = %e, "dead-letter write failed; job stays in the queue");
            acknowledge(msg, Ack::Nak(ctx.policy.cap)).await;
            return Processed::Retried;
        }
    }
    if let Err(e) = ctx.store.finish(&record).await {
        tracing::warn!(error = %e, "cannot record job outcome; will retry");
        acknowledge(msg, Ack::Nak(full_jitter(attempt, ctx.policy.base, ctx.policy.cap))).await;
        return Processed::Retried;
    }
    metrics::counter!("jobs_finished_total", "kind" => kind_label(&job.kind), "status" => status.as_str()).increment(1);
    acknowledge(msg, ack).await;
    Processed::Settled(status)
}

fn apply(mut record: JobRecord, status: JobStatus, outcome: &Outcome) -> JobRecord {
    record.status = status;
    match outcome {
        Outcome::Succeeded(r) => record.result = Some(r.clone()),
        Outcome::Failed(e) | Outcome::Transient { error: e, .. } => record.error = Some(e.clone()),
        Outcome::Cancelled => {}
    }
    record
}

async fn undecodable(ctx: &WorkerContext, msg: &jetstream::Message, attempt: u32, reason: String) -> Processed {
    tracing::warn!(subject = %msg.subject, %reason, "undecodable job; dead-lettering its raw bytes");
    let error = job_error("undecodable", &reason);
    match dead_letter::write(&ctx.js, &ctx.topology, msg, None, None, attempt, &error).await {
        Ok(()) => acknowledge(msg, Ack::Term).await,
        Err(e) => {
            tracing::error!(error = %e, "dead-letter write failed; message stays in the queue");
            acknowledge(msg, Ack::Nak(ctx.policy.cap)).await;
        }
    }
    Processed::Undecodable
}

fn job_error(code: &str, message: &str) -> JobError {
    JobError {
        http_status: 422,
        error: code.into(),
        message: message.into(),
        details: None,
    }
}

/// Bounded label: unknown kinds from hand-made messages collapse to one value.
fn kind_label(kind: &str) -> &'static str {
    kind_spec(kind).map(|s| s.name).unwrap_or("unknown")
}

async fn acknowledge(msg: &jetstream::Message, ack: Ack) {
    let kind = match ack {
        Ack::Ack => AckKind::Ack,
        Ack::Nak(delay) => AckKind::Nak(Some(delay)),
        Ack::Term => AckKind::Term,
    };
    if let Err(e) = msg.ack_with(kind).await {
        // The server redelivers after ack_wait; handlers are idempotent.
        tracing::warn!(error = %e, ?ack, "acknowledgement not sent");
    }
}
