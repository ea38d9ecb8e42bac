//! Jobs that hit the consumer's `max_deliver` because no worker ever
//! acknowledged them (a worker crashed or stalled on each delivery). The
//! server stops delivering such a message and says so only in an advisory;
//! without this listener the job would sit in `GAD_JOBS` forever, `running`
//! to anyone who asked. Here it is dead-lettered like any exhausted job: the
//! record on `GAD_DLQ`, then the `jobs` row `dead`, then the message removed.
//!
//! Every worker process listens, in one queue group, so each advisory is
//! handled once; handling twice is harmless (the record's message id is
//! deduplicated, the row only moves from a live status).

use std::time::Duration;

use async_nats::jetstream::stream::LastRawMessageErrorKind;
use futures::StreamExt;
use gad_shared::envelope::{JobEnvelope, headers};
use gad_shared::job::{JobError, JobRecord, JobStatus, kind_spec};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::dead_letter::{self, Original};
use crate::process::WorkerContext;

const QUEUE_GROUP: &str = "gad-workers-max-deliveries";

/// The advisory's fields we use (`io.nats.jetstream.advisory.v1.max_deliver`).
#[derive(Debug, Deserialize)]
pub struct Advisory {
    pub stream: String,
    pub consumer: String,
    pub stream_seq: u64,
    pub deliveries: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum MaxDeliveriesError {
    #[error("reading message {seq}: {reason}")]
    Read { seq: u64, reason: String },
    #[error("writing the dead-letter record: {0}")]
    DeadLetter(#[from] async_nats::jetstream::context::PublishError),
    #[error("jobs row: {0}")]
    Database(#[from] sqlx::Error),
}

/// What became of one advisory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    DeadLettered,
    /// The job had ended meanwhile (its acknowledgement was what got lost).
    AlreadyFinished,
    /// The message is gone: handled already, or acknowledged late.
    Gone,
}

/// The advisory subject for every consumer of the jobs stream.
pub fn subject(ctx: &WorkerContext) -> String {
    format!(
        "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.*",
        ctx.topology.jobs_stream()
    )
}

pub async fn run(ctx: WorkerContext, client: async_nats::Client, cancel: CancellationToken) {
    let mut advisories = loop {
        match client.queue_subscribe(subject(&ctx), QUEUE_GROUP.into()).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for max-deliveries advisories; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    loop {
        let message = tokio::select! {
            _ = cancel.cancelled() => break,
            m = advisories.next() => m,
        };
        let Some(message) = message else { break };
        let advisory: Advisory = match serde_json::from_slice(&message.payload) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable max-deliveries advisory");
                continue;
            }
        };
        // A few tries: the advisory is sent once, and a short outage of
        // PostgreSQL or NATS must not leave the job stranded.
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=5 {
            match handle(&ctx, &advisory).await {
                Ok(outcome) => {
                    tracing::warn!(seq = advisory.stream_seq, consumer = %advisory.consumer, ?outcome,
                        "job exceeded max deliveries");
                    break;
                }
                Err(e) if attempt == 5 => {
                    tracing::error!(seq = advisory.stream_seq, error = %e, "job exceeded max deliveries and could not be dead-lettered; it stays in the jobs stream");
                }
                Err(e) => {
                    tracing::warn!(seq = advisory.stream_seq, error = %e, "dead-lettering an undelivered job; retrying");
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay *= 2;
                }
            }
        }
    }
}

pub async fn handle(ctx: &WorkerContext, advisory: &Advisory) -> Result<Handled, MaxDeliveriesError> {
    let seq = advisory.stream_seq;
    let stream = ctx
        .js
        .get_stream_no_info(ctx.topology.jobs_stream())
        .await
        .map_err(|e| MaxDeliveriesError::Read {
            seq,
            reason: e.to_string(),
        })?;
    let message = match stream.get_raw_message(seq).await {
        Ok(m) => m,
        Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => return Ok(Handled::Gone),
        Err(e) => {
            return Err(MaxDeliveriesError::Read {
                seq,
                reason: e.to_string(),
            });
        }
    };
    let original = Original {
        subject: message.subject.as_str(),
        headers: Some(&message.headers),
        payload: &message.payload,
    };
    let attempts = advisory.deliveries.min(u32::MAX as u64) as u32;
    let handled = dead_letter_undelivered(ctx, original, attempts).await?;
    remove(&stream, seq).await;
    Ok(handled)
}

/// Dead-letters a job no worker ever acknowledged, whichever broker gave
/// up on it: the record on `GAD_DLQ`, then the `jobs` row `dead` (unless it
/// ended meanwhile: then nothing is written). The caller removes the message.
pub async fn dead_letter_undelivered(
    ctx: &WorkerContext,
    original: Original<'_>,
    attempts: u32,
) -> Result<Handled, MaxDeliveriesError> {
    let content_type = original
        .headers
        .and_then(|h| h.get(headers::CONTENT_TYPE))
        .map(|v| v.as_str().to_string());
    let error = JobError {
        http_status: 503,
        error: "max_deliveries".into(),
        message: format!("delivered {attempts} times without an acknowledgement"),
        details: None,
    };
    let job = match JobEnvelope::decode(original.payload, content_type.as_deref()) {
        Ok(job) => job,
        Err(_) => {
            dead_letter::write(&ctx.js, &ctx.topology, original, None, None, attempts, &error).await?;
            return Ok(Handled::DeadLettered);
        }
    };
    let status: Option<JobStatus> = sqlx::query_scalar("SELECT status FROM jobs WHERE job_id = $1")
        .bind(job.job_id)
        .fetch_optional(&ctx.store.db)
        .await?;
    if status.is_some_and(|s| s.is_terminal()) {
        return Ok(Handled::AlreadyFinished);
    }
    let id = job.job_id.to_string();
    dead_letter::write(
        &ctx.js,
        &ctx.topology,
        original,
        Some(&id),
        Some(&job.kind),
        attempts,
        &error,
    )
    .await?;
    let record = mark_dead(ctx, &job, attempts, &error).await?;
    if let Some(record) = record
        && let Err(e) = ctx.store.announce(&record).await
    {
        tracing::warn!(error = %e, job_id = %id, "dead status not announced");
    }
    Ok(Handled::DeadLettered)
}

/// The row as `dead`, unless it ended meanwhile; `None` then.
async fn mark_dead(
    ctx: &WorkerContext,
    job: &JobEnvelope,
    attempts: u32,
    error: &JobError,
) -> Result<Option<JobRecord>, sqlx::Error> {
    let max_attempts = kind_spec(&job.kind).map(|s| s.max_attempts).unwrap_or(1);
    let summary = crate::job_store::redact(&job.payload);
    let written: Option<(chrono::DateTime<chrono::Utc>, Option<chrono::DateTime<chrono::Utc>>)> = sqlx::query_as(
        "INSERT INTO jobs (job_id, kind, status, attempts, max_attempts, submitted_by, payload_summary, error,
                           created_at, finished_at)
         VALUES ($1, $2, 'dead', $3, $4, $5, $6, $7, $8, now())
         ON CONFLICT (job_id) DO UPDATE
            SET status = 'dead', attempts = EXCLUDED.attempts, error = EXCLUDED.error, finished_at = now()
          WHERE jobs.status NOT IN ('succeeded', 'failed', 'dead', 'cancelled')
         RETURNING finished_at, started_at",
    )
    .bind(job.job_id)
    .bind(&job.kind)
    .bind(attempts as i32)
    .bind(max_attempts as i32)
    .bind(job.submitted_by)
    .bind(&summary)
    .bind(serde_json::json!(error))
    .bind(job.submitted_at)
    .fetch_optional(&ctx.store.db)
    .await?;
    Ok(written.map(|(finished_at, started_at)| JobRecord {
        job_id: job.job_id,
        kind: job.kind.clone(),
        status: JobStatus::Dead,
        attempts,
        max_attempts,
        submitted_by: job.submitted_by,
        payload_summary: summary,
        result: None,
        error: Some(error.clone()),
        created_at: job.submitted_at,
        started_at,
        finished_at: Some(finished_at),
    }))
}

/// The message leaves the work queue; left behind, it would block nothing
/// but would be counted as pending forever.
async fn remove(stream: &async_nats::jetstream::stream::Stream<()>, seq: u64) {
    if let Err(e) = stream.delete_message(seq).await {
        tracing::warn!(seq, error = %e, "undelivered job not removed from the jobs stream");
    }
}

#[cfg(test)]
mod tests {
    use crate::dead_letter::header as written;
    use gad_shared::dlq::header as read;

    #[test]
    fn the_dead_letter_headers_written_are_the_ones_operators_read() {
        assert_eq!(written::JOB_ID, read::JOB_ID);
        assert_eq!(written::KIND, read::KIND);
        assert_eq!(written::ATTEMPTS, read::ATTEMPTS);
        assert_eq!(written::ERROR, read::ERROR);
        assert_eq!(written::ORIGINAL_SUBJECT, read::ORIGINAL_SUBJECT);
    }

    #[test]
    fn advisories_parse() {
        let a: super::Advisory = serde_json::from_str(
            r#"{"type":"io.nats.jetstream.advisory.v1.max_deliver","id":"x","timestamp":"2026-01-01T00:00:00Z",
                "stream":"GAD_JOBS","consumer":"geo","stream_seq":7,"deliveries":10,"domain":""}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((a.stream_seq, a.deliveries, a.consumer.as_str()), (7, 10, "geo"));
    }
}
