//! `POST /api/v1/jobs/{id}/cancel` (architecture.md, "Cancelling a queued
//! job"): a queued job becomes `cancelled`, and a worker that later picks it
//! acknowledges it without running it.
//!
//! The `jobs` row settles the race with a worker: the worker upserts it as
//! `running` only while it is not terminal, and the cancel writes it as
//! `cancelled` only while it is `queued` (or absent: never picked). Whichever
//! lands first wins, so a cancel that loses answers with what the job became
//! and changes nothing. The status bucket is swapped only after the row
//! commits, so no waiting client ever sees a cancellation that did not happen.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use chrono::Utc;
use gad_shared::auth::Caller;
use gad_shared::envelope;
use gad_shared::http_error::{ApiError, current_request_id};
use gad_shared::job::{JobError, JobRecord, JobStatus};
use serde_json::json;
use uuid::Uuid;

use async_nats::jetstream::kv;

use super::{from_db, visible};
use crate::caller::Authenticated;
use crate::state::AppState;

/// The relay's wake-up channel (`gad_workers::effects::outbox::NOTIFY_CHANNEL`).
const OUTBOX_CHANNEL: &str = "gad_outbox";

#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs", params(("id" = uuid::Uuid, Path, description = "Job id")),
    responses((status = 200, description = "Cancelled (it was queued)", body = JobRecord),
        (status = 409, description = "`job_running` or `job_finished`")))]
pub async fn cancel_job(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<JobRecord>, ApiError> {
    let job_id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found("job"))?;
    let bucket = state
        .nats
        .status_bucket()
        .ok_or_else(|| ApiError::dependency_unavailable("nats"))?;
    let key = job_id.to_string();
    let (before, revision) = match read(bucket, &key).await? {
        Some(found) => found,
        // No fast status (expired, or never written): the durable row decides.
        None => (
            from_db(&state, job_id)
                .await?
                .ok_or_else(|| ApiError::not_found("job"))?,
            None,
        ),
    };
    visible(&caller, &before)?;
    refuse_unless_queued(before.status)?;
    let after = cancelled(&before);
    if let Persisted::Overtaken(status) = persist(&state, &caller, &headers, &before, &after).await? {
        return Err(refusal(status));
    }
    let value = envelope::encode(&after).map_err(ApiError::internal)?;
    publish_status(bucket, &key, value, revision).await;
    Ok(Json(after))
}

/// The current status and its revision; `None` when there is no live entry.
async fn read(bucket: &kv::Store, key: &str) -> Result<Option<(JobRecord, Option<u64>)>, ApiError> {
    let entry = bucket.entry(key).await.map_err(|e| {
        tracing::warn!(error = %e, "job status unreadable");
        ApiError::dependency_unavailable("nats")
    })?;
    let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
        return Ok(None);
    };
    let record: JobRecord = envelope::decode(&entry.value, None).map_err(ApiError::internal)?;
    Ok(Some((record, Some(entry.revision))))
}

/// Compare-and-set from the revision read; when a worker wrote meanwhile (it
/// found the row cancelled and announced that), the value is written anyway:
/// the committed row has already decided.
async fn publish_status(bucket: &kv::Store, key: &str, value: Bytes, revision: Option<u64>) {
    let swapped = match revision {
        Some(rev) => bucket
            .update(key, value.clone(), rev)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        None => bucket
            .create(key, value.clone())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
    };
    if swapped.is_ok() {
        return;
    }
    if let Err(e) = bucket.put(key, value).await {
        // The worker still skips the job (its row is terminal); polls show
        // `queued` until the entry expires.
        tracing::warn!(error = %e, job_id = key, "cancelled status not published to the bucket");
    }
}

fn refuse_unless_queued(status: JobStatus) -> Result<(), ApiError> {
    if status == JobStatus::Queued {
        Ok(())
    } else {
        Err(refusal(status))
    }
}

/// Running jobs are not interrupted, not even the cooperatively cancellable kinds.
fn refusal(status: JobStatus) -> ApiError {
    if status.is_terminal() {
        ApiError::new(
            StatusCode::CONFLICT,
            "job_finished",
            format!("the job already ended ({})", status.as_str()),
        )
    } else {
        ApiError::new(
            StatusCode::CONFLICT,
            "job_running",
            "the job is running and cannot be cancelled",
        )
    }
}

fn cancelled(before: &JobRecord) -> JobRecord {
    JobRecord {
        status: JobStatus::Cancelled,
        finished_at: Some(Utc::now()),
        error: Some(JobError {
            http_status: 409,
            error: "job_cancelled".into(),
            message: "the job was cancelled".into(),
            details: None,
        }),
        ..before.clone()
    }
}

enum Persisted {
    Cancelled,
    /// The row had already left `queued`; the job is in this status.
    Overtaken(JobStatus),
}

/// The row as `cancelled` (only from `queued` or absent), the audit row and
/// the `job_updated` event, in one transaction.
async fn persist(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    before: &JobRecord,
    after: &JobRecord,
) -> Result<Persisted, sqlx::Error> {
    let mut tx = state.db.begin().await?;
    let written: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO jobs (job_id, kind, status, attempts, max_attempts, submitted_by, payload_summary, error,
                           created_at, finished_at)
         VALUES ($1, $2, 'cancelled', $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (job_id) DO UPDATE SET status = 'cancelled', error = EXCLUDED.error, finished_at = EXCLUDED.finished_at
          WHERE jobs.status = 'queued'
         RETURNING job_id",
    )
    .bind(after.job_id)
    .bind(&after.kind)
    .bind(after.attempts as i32)
    .bind(after.max_attempts.max(1) as i32)
    .bind(after.submitted_by)
    .bind(&after.payload_summary)
    .bind(after.error.as_ref().map(|e| json!(e)))
    .bind(after.created_at)
    .bind(after.finished_at)
    .fetch_optional(&mut *tx)
    .await?;
    if written.is_none() {
        let status: JobStatus = sqlx::query_scalar("SELECT status FROM jobs WHERE job_id = $1")
            .bind(after.job_id)
            .fetch_one(&mut *tx)
            .await?;
        return Ok(Persisted::Overtaken(status));
    }
    audit(&mut tx, caller, headers, before, after).await?;
    sqlx::query(
        "INSERT INTO outbox_events (event_id, event_type, topics, payload, job_id)
         VALUES ($1, 'job_updated', $2, $3, $4)",
    )
    .bind(Uuid::now_v7())
    .bind(vec![format!("jobs.{}", after.job_id)])
    .bind(after.job_updated_data())
    .bind(after.job_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(OUTBOX_CHANNEL)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Persisted::Cancelled)
}

async fn audit(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    caller: &Caller,
    headers: &HeaderMap,
    before: &JobRecord,
    after: &JobRecord,
) -> Result<(), sqlx::Error> {
    let user_agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(512).collect::<String>());
    let request_id = current_request_id().map(|r| r.chars().take(64).collect::<String>());
    sqlx::query(
        "INSERT INTO audit_log (actor_usuario_id, action, severity, resource_type, resource_id, before, after,
                                request_id, job_id, user_agent)
         VALUES ($1, 'job_cancelled', 'low', 'job', $2, $3, $4, $5, $6, $7)",
    )
    .bind(caller.user_id)
    .bind(after.job_id.to_string())
    .bind(json!(before))
    .bind(json!(after))
    .bind(request_id)
    .bind(after.job_id)
    .bind(user_agent)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
