//! `/api/v1/jobs`: one job (the fast status from NATS, else the durable row),
//! the list of durable rows, and cancelling a queued job.

mod cancel;

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use gad_shared::auth::Caller;
use gad_shared::error_body::FieldError;
use gad_shared::http_error::ApiError;
use gad_shared::job::{JobError, JobRecord, JobResult, JobStatus};
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use crate::caller::Authenticated;
use crate::job_answer::current_status;
use crate::routes::users::{list_response, pagination};
use crate::state::AppState;
use crate::validate::Params;

/// The list and the cancel action; `GET /api/v1/jobs/{id}` is routed beside it.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/jobs", get(list_jobs))
        .route("/api/v1/jobs/{id}/cancel", post(cancel::cancel_job))
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(("id" = uuid::Uuid, Path, description = "Job id")),
    responses((status = 200, description = "The submitter's job, or any for nivel ≥ 2", body = JobRecord)))]
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
    visible(&caller, &record)?;
    Ok(Json(record))
}

/// Someone else's job is reported missing, not forbidden: ids are not confirmed.
fn visible(caller: &Caller, record: &JobRecord) -> Result<(), ApiError> {
    if caller.is_supervisor() || record.submitted_by == Some(caller.user_id) {
        Ok(())
    } else {
        Err(ApiError::not_found("job"))
    }
}

const STATUSES: [JobStatus; 6] = [
    JobStatus::Queued,
    JobStatus::Running,
    JobStatus::Succeeded,
    JobStatus::Failed,
    JobStatus::Dead,
    JobStatus::Cancelled,
];

/// `GET /api/v1/jobs`: newest first; a nivel 1 caller sees only its own jobs.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs",
    params(("skip" = Option<i64>, Query, minimum = 0, description = "Rows to skip"), ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "At most this many (default 100)"), ("status" = Option<gad_shared::job::JobStatus>, Query),
        ("kind" = Option<String>, Query, max_length = 48), ("submitted_by" = Option<i64>, Query, minimum = 1)),
    responses((status = 200, description = "Newest first; nivel 1 sees its own only", body = [JobRecord], headers(("x-total-count" = i64, description = "Rows matching the filters")))))]
async fn list_jobs(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut p = Params::new(&raw);
    let submitted_by = p.integer("submitted_by", false, 1, i64::MAX);
    let (skip, limit) = pagination(&mut p);
    let status = text(&raw, "status").and_then(|s| match STATUSES.into_iter().find(|st| st.as_str() == s) {
        Some(st) => Some(st),
        None => {
            let allowed: Vec<_> = STATUSES.iter().map(|s| s.as_str()).collect();
            let message = format!("status must be one of {}", allowed.join(", "));
            p.errors.push(FieldError::new("status", "invalid_choice", message));
            None
        }
    });
    let kind = text(&raw, "kind").and_then(|k| {
        if k.chars().count() <= 48 {
            Some(k)
        } else {
            p.errors.push(FieldError::new(
                "kind",
                "invalid_length",
                "kind must have at most 48 characters",
            ));
            None
        }
    });
    if !p.errors.is_empty() {
        return Err(ApiError::validation(p.errors));
    }
    let own = (!caller.is_supervisor()).then_some(caller.user_id);
    const FILTER: &str = "($1::job_status IS NULL OR status = $1) AND ($2::text IS NULL OR kind = $2)
         AND ($3::bigint IS NULL OR submitted_by = $3) AND ($4::bigint IS NULL OR submitted_by = $4)";
    let total: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM jobs WHERE {FILTER}")))
        .bind(status)
        .bind(kind)
        .bind(submitted_by)
        .bind(own)
        .fetch_one(&state.db)
        .await?;
    let rows: Vec<JobRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE {FILTER} ORDER BY created_at DESC, job_id DESC LIMIT $5 OFFSET $6"
    )))
    .bind(status)
    .bind(kind)
    .bind(submitted_by)
    .bind(own)
    .bind(limit)
    .bind(skip)
    .fetch_all(&state.db)
    .await?;
    let jobs: Vec<JobRecord> = rows.into_iter().map(JobRecord::from).collect();
    Ok(list_response(jobs, total))
}

/// A non-empty, trimmed query parameter.
fn text<'a>(raw: &'a HashMap<String, String>, field: &str) -> Option<&'a str> {
    raw.get(field).map(|s| s.trim()).filter(|s| !s.is_empty())
}

const JOB_COLUMNS: &str = "job_id, kind, status, attempts, max_attempts, submitted_by, payload_summary, result, error, \
                           created_at, started_at, finished_at";

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

impl From<JobRow> for JobRecord {
    fn from(r: JobRow) -> Self {
        JobRecord {
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
        }
    }
}

async fn from_db(state: &AppState, job_id: Uuid) -> Result<Option<JobRecord>, ApiError> {
    let row: Option<JobRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = $1"
    )))
    .bind(job_id)
    .fetch_optional(&state.db)
    .await
    .map_err(|e| {
        tracing::warn!(error = %e, "jobs row lookup failed");
        ApiError::dependency_unavailable("postgres")
    })?;
    Ok(row.map(JobRecord::from))
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(get_job, list_jobs, cancel::cancel_job))]
pub struct Api;
