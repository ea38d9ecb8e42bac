//! One delivery of one job, from message to acknowledgement.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use gad_shared::envelope::{self, JobEnvelope, headers};
use gad_shared::job::{JobError, JobRecord, JobStatus, kind_spec};
use gad_shared::otlp::{self, Hop, HopSpan};
use gad_shared::queue::Delivery;
use gad_shared::topology::Topology;
use gad_shared::trace_context::{self, TraceParent};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::backoff::full_jitter;
use crate::circuit_breaker::{CircuitBreaker, database_unavailable, store_unavailable, unreachable};
use crate::dead_letter;
use crate::job_store::{JobStore, Started, StoreError};
use crate::jobs::{self, HandlerContext, HandlerError};
use crate::outcome::{Ack, Outcome, RetryPolicy, hold_for_breaker, settle};

#[derive(Clone)]
pub struct WorkerContext {
    pub store: JobStore,
    pub handlers: HandlerContext,
    pub js: jetstream::Context,
    /// Set when the jobs queue is on RabbitMQ (`queue.backend`).
    pub rabbit: Option<gad_shared::queue::rabbit::RabbitLink>,
    pub topology: Topology,
    pub policy: RetryPolicy,
    /// Fed by every database call a delivery makes; read by the group loops.
    pub breaker: Arc<CircuitBreaker>,
    /// Fired when the shutdown grace period is over: running handlers stop
    /// and their jobs go back to the queue at once.
    pub abandon: CancellationToken,
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

pub async fn process_one(ctx: &WorkerContext, msg: Delivery, deadline: Duration) -> Processed {
    let attempt = msg.attempt;
    let job = match JobEnvelope::decode(&msg.payload, msg.header(headers::CONTENT_TYPE)) {
        Ok(job) => job,
        Err(e) => return undecodable(ctx, &msg, attempt, e.to_string()).await,
    };
    if attempt == 1 {
        // The queue's own cost: submit to first pickup (retries would add
        // their backoff). Clocks of two hosts: a negative skew counts as 0.
        let waited = (chrono::Utc::now() - job.submitted_at).to_std().unwrap_or_default();
        metrics::histogram!(gad_shared::metric_names::JOB_QUEUE_WAIT, "kind" => kind_label(&job.kind))
            .record(waited.as_secs_f64());
    }
    // The submitter's trace continues here (one job, one trace); a message
    // without one (an older or foreign publisher) starts its own.
    let parent = msg.header(headers::TRACEPARENT).and_then(TraceParent::parse);
    let trace = parent.map_or_else(TraceParent::root, |t| t.child());
    let span = tracing::info_span!(
        "job",
        job_id = %job.job_id,
        kind = %job.kind,
        attempt,
        trace_id = %trace.trace_id(),
    );
    let exported = HopSpan::start(Hop::Job, trace, parent, || {
        vec![
            otlp::attribute("gad.job_id", job.job_id.to_string()),
            otlp::attribute("gad.job.kind", job.kind.clone()),
            otlp::attribute("gad.job.attempt", i64::from(attempt)),
        ]
    });
    let processed = trace_context::CURRENT
        .scope(trace, run(ctx, &msg, job, attempt, deadline))
        .instrument(span)
        .await;
    exported.end(match &processed {
        Processed::Settled(JobStatus::Succeeded) | Processed::Skipped => None,
        Processed::Settled(status) => Some(status.as_str().to_string()),
        Processed::Retried => Some("retried".into()),
        Processed::Undecodable => Some("undecodable".into()),
    });
    processed
}

async fn run(ctx: &WorkerContext, msg: &Delivery, job: JobEnvelope, attempt: u32, deadline: Duration) -> Processed {
    let max_attempts = kind_spec(&job.kind).map(|s| s.max_attempts).unwrap_or(1);
    if let Some(processed) = skip_if_cancelled(ctx, msg, &job, attempt).await {
        return processed;
    }
    if kind_spec(&job.kind).is_some_and(|s| s.read_only) {
        return run_read_only(ctx, msg, job, attempt, max_attempts, deadline).await;
    }
    // The start row can wait for a pooled connection (up to the acquire
    // timeout): shutdown does not wait for it.
    let started = tokio::select! {
        s = ctx.store.start(&job, max_attempts, attempt) => s,
        _ = ctx.abandon.cancelled() => return hand_back(ctx, msg, None, Ack::Nak(Duration::ZERO)).await,
    };
    match &started {
        Ok(_) => ctx.breaker.record_success(),
        Err(e) if unreachable(e) => ctx.breaker.record_failure(),
        Err(_) => {}
    }
    let started = match started {
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
        Ok(Started::Claimed) => {
            tracing::info!("another delivery of this job is live; this copy is dropped");
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
    let ((), result) = tokio::join!(announce, handle(ctx, &job, deadline));
    let (outcome, held) = judge(ctx, result);
    let (status, ack) = settlement(ctx, &outcome, held, attempt, max_attempts);
    let record = apply(started, status, &outcome);
    if outcome == Outcome::Interrupted {
        return hand_back(ctx, msg, Some(&record), ack).await;
    }
    if status == JobStatus::Dead && !dead_letter_first(ctx, msg, &job, attempt, &record).await {
        return Processed::Retried;
    }
    if let Err(e) = observe_store(ctx, ctx.store.finish(&record).await) {
        tracing::warn!(error = %e, "cannot record job outcome; will retry");
        acknowledge(msg, Ack::Nak(full_jitter(attempt, ctx.policy.base, ctx.policy.cap))).await;
        return Processed::Retried;
    }
    tracing::debug!(status = status.as_str(), "job finished");
    metrics::counter!(gad_shared::metric_names::JOBS_FINISHED, "kind" => kind_label(&job.kind), "status" => status.as_str()).increment(1);
    acknowledge(msg, ack).await;
    Processed::Settled(status)
}

/// A job stopped at shutdown goes back to the queue at once. Its row says
/// `queued` again if the database answers quickly; the stopped handlers may
/// still hold every pooled connection (a query blocked on a lock keeps its
/// connection until it ends), and then the next worker's start overwrites
/// `running` anyway: waiting here would only delay the exit.
async fn hand_back(ctx: &WorkerContext, msg: &Delivery, record: Option<&JobRecord>, ack: Ack) -> Processed {
    // No idle connection means the stopped handlers still hold them all:
    // waiting for one would only delay the exit.
    if let Some(record) = record.filter(|_| ctx.store.db.num_idle() > 0) {
        match tokio::time::timeout(HAND_BACK_WRITE, ctx.store.finish(record)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "handed-back job's row not reset"),
            Err(_) => tracing::debug!("handed-back job's row not reset in time"),
        }
    }
    acknowledge(msg, ack).await;
    Processed::Retried
}

const HAND_BACK_WRITE: Duration = Duration::from_millis(500);

/// How a handler run ended.
enum Handled {
    Done(Result<gad_shared::job::JobResult, HandlerError>),
    PastDeadline,
    Abandoned,
}

/// Runs the job's handler within its deadline, unless shutdown abandons it
/// first (dropping the handler rolls its transaction back).
async fn handle(ctx: &WorkerContext, job: &JobEnvelope, deadline: Duration) -> Handled {
    tokio::select! {
        r = tokio::time::timeout(deadline, jobs::run(&ctx.handlers, job)) => match r {
            Ok(r) => Handled::Done(r),
            Err(_) => Handled::PastDeadline,
        },
        _ = ctx.abandon.cancelled() => Handled::Abandoned,
    }
}

/// The handler's result as an outcome, and whether the failure is the
/// database's while its breaker is open (then the job is held, not judged).
fn judge(ctx: &WorkerContext, result: Handled) -> (Outcome, bool) {
    match result {
        Handled::Done(Ok(r)) => (Outcome::Succeeded(r), false),
        Handled::Abandoned => (Outcome::Interrupted, false),
        Handled::Done(Err(e)) => {
            let db_down = database_unavailable(&e);
            if db_down {
                ctx.breaker.record_failure();
            }
            (e.into_outcome(), db_down && !ctx.breaker.is_closed())
        }
        Handled::PastDeadline => (HandlerError::Deadline.into_outcome(), false),
    }
}

fn settlement(ctx: &WorkerContext, outcome: &Outcome, held: bool, attempt: u32, max_attempts: u32) -> (JobStatus, Ack) {
    if held {
        hold_for_breaker(ctx.breaker.cooldown())
    } else {
        settle(outcome, attempt, max_attempts, ctx.policy)
    }
}

/// Feeds the breaker with the outcome of a job-store write.
fn observe_store(ctx: &WorkerContext, r: Result<(), StoreError>) -> Result<(), StoreError> {
    match &r {
        Ok(()) => ctx.breaker.record_success(),
        Err(e) if store_unavailable(e) => ctx.breaker.record_failure(),
        Err(_) => {}
    }
    r
}

/// Writes the dead-letter record a terminated job needs first. False when
/// that failed: the job was nak'ed instead, since terminating would lose it.
async fn dead_letter_first(
    ctx: &WorkerContext,
    msg: &Delivery,
    job: &JobEnvelope,
    attempt: u32,
    record: &JobRecord,
) -> bool {
    let error = record
        .error
        .clone()
        .unwrap_or_else(|| job_error("dead", "retries exhausted"));
    let id = job.job_id.to_string();
    match dead_letter::write(&ctx.js, &ctx.topology, msg, Some(&id), Some(&job.kind), attempt, &error).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "dead-letter write failed; job stays in the queue");
            acknowledge(msg, Ack::Nak(ctx.policy.cap)).await;
            false
        }
    }
}

/// A read-only job (a PostGIS query): no separate "running" row or
/// announcement, one durable write with the outcome. Bookkeeping would cost
/// more round trips than the query itself, and a rerun changes nothing.
async fn run_read_only(
    ctx: &WorkerContext,
    msg: &Delivery,
    job: JobEnvelope,
    attempt: u32,
    max_attempts: u32,
    deadline: Duration,
) -> Processed {
    let started_at = chrono::Utc::now();
    let result = handle(ctx, &job, deadline).await;
    let (outcome, held) = judge(ctx, result);
    let (status, ack) = settlement(ctx, &outcome, held, attempt, max_attempts);
    if outcome == Outcome::Interrupted {
        // Its row is written only with an outcome: there is none to undo.
        return hand_back(ctx, msg, None, ack).await;
    }
    let record = apply(
        JobRecord {
            job_id: job.job_id,
            kind: job.kind.clone(),
            status,
            attempts: attempt,
            max_attempts,
            submitted_by: job.submitted_by,
            payload_summary: crate::job_store::redact(&job.payload),
            result: None,
            error: None,
            created_at: job.submitted_at,
            started_at: Some(started_at),
            finished_at: None,
        },
        status,
        &outcome,
    );
    if status == JobStatus::Dead && !dead_letter_first(ctx, msg, &job, attempt, &record).await {
        return Processed::Retried;
    }
    if let Err(e) = observe_store(ctx, ctx.store.record_read_only(&job, &record).await) {
        tracing::warn!(error = %e, "cannot record job outcome; will retry");
        acknowledge(msg, Ack::Nak(full_jitter(attempt, ctx.policy.base, ctx.policy.cap))).await;
        return Processed::Retried;
    }
    tracing::debug!(status = status.as_str(), "job finished");
    metrics::counter!(gad_shared::metric_names::JOBS_FINISHED, "kind" => kind_label(&job.kind), "status" => status.as_str()).increment(1);
    acknowledge(msg, ack).await;
    Processed::Settled(status)
}

/// A job cancelled while queued (status `cancelled` in the bucket) is
/// acknowledged without running. Ingress commits the cancelled row before it
/// swaps the bucket, so the row is normally written already; it is written
/// here too (only from `queued` or absent, the same rule ingress follows), so
/// the outcome is durable however the status got into the bucket. A row a
/// worker already marked `running` keeps the job alive.
async fn skip_if_cancelled(ctx: &WorkerContext, msg: &Delivery, job: &JobEnvelope, attempt: u32) -> Option<Processed> {
    let record = match ctx.store.status.get(job.job_id.to_string()).await {
        Ok(Some(bytes)) => envelope::decode::<JobRecord>(&bytes, None).ok()?,
        Ok(None) => return None,
        Err(e) => {
            // The row still stops a cancelled job: `start` skips terminal rows.
            tracing::warn!(error = %e, "job status unreadable; the jobs row decides");
            return None;
        }
    };
    if record.status != JobStatus::Cancelled {
        return None;
    }
    match record_cancelled(ctx, job, &record).await {
        Ok(CancelRow::Written) => {
            tracing::info!("job cancelled while queued; acknowledged without running");
            if let Err(e) = ctx.store.announce(&record).await {
                tracing::warn!(error = %e, "cancellation not announced");
            }
            acknowledge(msg, Ack::Ack).await;
            Some(Processed::Settled(JobStatus::Cancelled))
        }
        Ok(CancelRow::AlreadyCancelled) => {
            acknowledge(msg, Ack::Ack).await;
            Some(Processed::Skipped)
        }
        Ok(CancelRow::Live) => None,
        Err(e) => {
            tracing::warn!(error = %e, "cannot record the cancellation; will retry");
            acknowledge(msg, Ack::Nak(full_jitter(attempt, ctx.policy.base, ctx.policy.cap))).await;
            Some(Processed::Retried)
        }
    }
}

enum CancelRow {
    /// This worker wrote the row as cancelled.
    Written,
    AlreadyCancelled,
    /// The row is in another status (a worker started it): the job goes on.
    Live,
}

async fn record_cancelled(
    ctx: &WorkerContext,
    job: &JobEnvelope,
    record: &JobRecord,
) -> Result<CancelRow, sqlx::Error> {
    let written: Option<uuid::Uuid> = sqlx::query_scalar(
        "INSERT INTO jobs (job_id, kind, status, attempts, max_attempts, submitted_by, request_id, payload_summary,
                           error, created_at, finished_at)
         VALUES ($1, $2, 'cancelled', $3, $4, $5, $6, $7, $8, $9, COALESCE($10, now()))
         ON CONFLICT (job_id) DO UPDATE SET status = 'cancelled', error = EXCLUDED.error, finished_at = EXCLUDED.finished_at
          WHERE jobs.status = 'queued'
         RETURNING job_id",
    )
    .bind(job.job_id)
    .bind(&job.kind)
    .bind(record.attempts as i32)
    .bind(record.max_attempts.max(1) as i32)
    .bind(job.submitted_by)
    .bind(job.request_id.as_ref().map(|r| r.chars().take(64).collect::<String>()))
    .bind(&record.payload_summary)
    .bind(record.error.as_ref().map(|e| serde_json::json!(e)))
    .bind(job.submitted_at)
    .bind(record.finished_at)
    .fetch_optional(&ctx.store.db)
    .await?;
    if written.is_some() {
        return Ok(CancelRow::Written);
    }
    let status: Option<JobStatus> = sqlx::query_scalar("SELECT status FROM jobs WHERE job_id = $1")
        .bind(job.job_id)
        .fetch_optional(&ctx.store.db)
        .await?;
    Ok(if status == Some(JobStatus::Cancelled) {
        CancelRow::AlreadyCancelled
    } else {
        CancelRow::Live
    })
}

fn apply(mut record: JobRecord, status: JobStatus, outcome: &Outcome) -> JobRecord {
    record.status = status;
    match outcome {
        Outcome::Succeeded(r) => record.result = Some(r.clone()),
        Outcome::Failed(e) | Outcome::Transient { error: e, .. } => record.error = Some(e.clone()),
        Outcome::Cancelled | Outcome::Interrupted => {}
    }
    record
}

async fn undecodable(ctx: &WorkerContext, msg: &Delivery, attempt: u32, reason: String) -> Processed {
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
    kind_spec(kind)
        .map(|s| s.name)
        .unwrap_or(gad_shared::metric_names::UNKNOWN_KIND)
}

async fn acknowledge(msg: &Delivery, ack: Ack) {
    if let Err(e) = msg.settle(ack).await {
        // The server redelivers after ack_wait; handlers are idempotent.
        tracing::warn!(error = %e, ?ack, "acknowledgement not sent");
    }
}
