//! `GET /api/v1/jobs/{id}`: the fast status from NATS, else the durable row.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use gad_shared::http_error::ApiError;
use gad_shared::job::{JobError, JobRecord, JobResult, JobStatus};
use uuid::Uuid;

use crate::caller::Authenticated;
use crate::job_answer::current_status;
use crate::state::AppState;

pub async fn get_job(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<JobRecord>, ApiError> {
    let job_id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found("job"))?;
    let record = match current_status(&state, job_id).await {
        Some(r) => r,
        None => from_db(&state, job_id)
            .await?
            .ok_or_else(|| ApiError::not_found("job"))?,
    };
    // Someone else's job is reported missing, not forbidden: ids are not confirmed.
    if !caller.is_supervisor() && record.submitted_by != Some(caller.user_id) {
        return Err(ApiError::not_found("job"));
    }
    Ok(Json(record))
}

#[derive(sqlx::FromRow)]
struct JobRow {
    job_id: Uuid,
    kind: String,
    status: JobStatus,
    attempts: i32,
    max_attempts: i32,
    submitted_by: Option<i64>,
    payload_summary: Option<serde_json::Value>,
    result: Option<serde_json::Value>,
    error: Option<serde_json::Value>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

async fn from_db(state: &AppState, job_id: Uuid) -> Result<Option<JobRecord>, ApiError> {
    let row: Option<JobRow> = sqlx::query_as(
        "SELECT job_id, kind, status, attempts, max_attempts, submitted_by, payload_summary, result, error, \
         created_at, started_at, finished_at FROM jobs WHERE job_id = $1",
    )
    .bind(job_id)
    .fetch_optional(&state.db)
    .await
    .map_err(|e| {
        tracing::warn!(error = %e, "jobs row lookup failed");
        ApiError::dependency_unavailable("postgres")
    })?;
    Ok(row.map(|r| JobRecord {
        job_id: r.job_id,
        kind: r.kind,
        status: r.status,
        attempts: r.attempts.max(0) as u32,
        max_attempts: r.max_attempts.max(0) as u32,
        submitted_by: r.submitted_by,
        payload_summary: r.payload_summary.unwrap_or_default(),
        result: r.result.and_then(|v| serde_json::from_value::<JobResult>(v).ok()),
        error: r.error.and_then(|v| serde_json::from_value::<JobError>(v).ok()),
        created_at: r.created_at,
        started_at: r.started_at,
        finished_at: r.finished_at,
    }))
}
