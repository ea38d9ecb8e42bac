//! The bot's commands go through the same jobs as the HTTP API, submitted
//! with `gad_shared::submit` on behalf of the linked usuario, and the bot
//! waits (bounded) for the outcome in the status bucket.

use std::time::Duration;

use futures::StreamExt;
use gad_shared::envelope;
use gad_shared::job::{JobRecord, JobStatus};
use gad_shared::submit::{self, JobQueue, NewJob, SubmitError};
use serde_json::Value;
use uuid::Uuid;

use super::BotContext;

/// How long the bot waits for a job before saying it is still running.
const WAIT: Duration = Duration::from_secs(15);

pub enum Outcome {
    /// Succeeded: the answer's body (`result.body`).
    Done(Value),
    /// Failed: the error's message for the user.
    Refused(String),
    /// Not finished within the wait.
    Pending,
    /// Not accepted (NATS down, queue full).
    Unavailable,
}

pub async fn run(ctx: &BotContext, usuario: i64, kind: &'static str, payload: Value) -> Outcome {
    let job_id = Uuid::now_v7();
    // Watching before submitting, so even a job faster than this task is seen.
    let key = job_id.to_string();
    let watch = ctx.job_status.watch_with_history(&key).await;
    if !submit_as(ctx, job_id, usuario, kind, payload).await {
        return Outcome::Unavailable;
    }
    let Ok(mut watch) = watch else {
        return Outcome::Pending;
    };
    let outcome = tokio::time::timeout(WAIT, async {
        while let Some(Ok(entry)) = watch.next().await {
            let Ok(record) = envelope::decode::<JobRecord>(&entry.value, None) else {
                continue;
            };
            if record.status.is_terminal() {
                return Some(record);
            }
        }
        None
    })
    .await;
    match outcome {
        Ok(Some(record)) => outcome_of(record),
        _ => Outcome::Pending,
    }
}

/// Submits without waiting for the outcome: for updates that come in
/// streams (live locations), where the bot must not hold the next update
/// back for each job. `false` when the job was not accepted.
pub async fn submit(ctx: &BotContext, usuario: i64, kind: &'static str, payload: Value) -> bool {
    submit_as(ctx, Uuid::now_v7(), usuario, kind, payload).await
}

async fn submit_as(ctx: &BotContext, job_id: Uuid, usuario: i64, kind: &'static str, payload: Value) -> bool {
    let queue = JobQueue {
        publisher: &ctx.publisher,
        topology: &ctx.topology,
        status_bucket: &ctx.job_status,
    };
    let job = NewJob {
        job_id,
        kind,
        summary: payload.clone(),
        payload,
        request_id: Some(format!("telegram:{job_id}")),
        submitted_by: Some(usuario),
        client: None,
    };
    match submit::submit(&queue, job).await {
        Ok(_) => true,
        Err(SubmitError::UnknownKind(k)) => {
            tracing::error!(kind = %k, "the bot submitted an unknown job kind");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "telegram bot: job not accepted");
            false
        }
    }
}

fn outcome_of(record: JobRecord) -> Outcome {
    if record.status == JobStatus::Succeeded {
        return Outcome::Done(record.result.map(|r| r.body).unwrap_or(Value::Null));
    }
    match record.error {
        Some(e) => Outcome::Refused(e.message),
        None => Outcome::Refused("la operación no se pudo completar".into()),
    }
}
