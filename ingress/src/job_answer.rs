//! How a queued request is answered: 202 with where to find the job, or, when
//! the client asked to wait, the job's own outcome as a synchronous answer.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gad_shared::auth::Caller;
use gad_shared::envelope;
use gad_shared::http_error::ApiError;
use gad_shared::job::{JobRecord, JobStatus};

use crate::idempotency::{self, Claim};
use crate::prefer::Prefer;
use crate::state::AppState;
use crate::submit::{self, NewJob, SubmitError};
use crate::waiters::Waiter;
use uuid::Uuid;

pub async fn submit_and_answer(
    state: &AppState,
    caller: &Caller,
    job: NewJob,
    prefer: Prefer,
) -> Result<Response, ApiError> {
    let job_id = job.job_id;
    if let Some(spec) = gad_shared::job::kind_spec(job.kind)
        && !state.admission.admits(spec.group)
    {
        metrics::counter!(gad_shared::metric_names::JOBS_REFUSED, "lane" => spec.group).increment(1);
        return Err(SubmitError::QueueFull.into());
    }
    let key = idempotency::current_key();
    if let Some(key) = &key {
        let bucket = state
            .nats
            .idempotency_bucket()
            .ok_or_else(|| ApiError::dependency_unavailable("nats"))?;
        let hash = idempotency::request_hash(job.kind, &job.payload);
        if let Claim::Existing(original) = idempotency::claim(bucket, caller.user_id, key, job_id, &hash).await? {
            return Ok(answer_existing(state, original, prefer).await);
        }
    }
    // Registered before publishing, so even an instant outcome is seen.
    let waiter = prefer.wait.and_then(|_| state.waiters.register(job_id));
    let submitted = submit::submit(&state.nats, caller, &state.publisher, job).await;
    if submitted.is_err()
        && let (Some(key), Some(bucket)) = (&key, state.nats.idempotency_bucket())
    {
        idempotency::release(bucket, caller.user_id, key).await;
    }
    submitted?;
    Ok(wait_for(state, job_id, prefer, waiter).await)
}

/// A repeated request: the original job's outcome, or where to follow it.
async fn answer_existing(state: &AppState, job_id: Uuid, prefer: Prefer) -> Response {
    let waiter = prefer.wait.and_then(|_| state.waiters.register(job_id));
    if let Some(done) = current_status(state, job_id).await.filter(|r| r.status.is_terminal()) {
        return with_job_headers(outcome_response(&done), job_id, prefer.wait);
    }
    wait_for(state, job_id, prefer, waiter).await
}

async fn wait_for(state: &AppState, job_id: Uuid, prefer: Prefer, waiter: Option<Waiter>) -> Response {
    let (Some(wait), Some(waiter)) = (prefer.wait, waiter) else {
        return accepted(job_id, None);
    };
    let outcome = match waiter.wait(Duration::from_secs(wait)).await {
        Some(done) => Some(done),
        // The status subscription is at-most-once: look once more before giving up.
        None => current_status(state, job_id).await.filter(|r| r.status.is_terminal()),
    };
    match outcome {
        Some(done) => with_job_headers(outcome_response(&done), job_id, Some(wait)),
        None => accepted(job_id, Some(wait)),
    }
}

/// The fast status from the bucket, if NATS has it.
pub async fn current_status(state: &AppState, job_id: uuid::Uuid) -> Option<JobRecord> {
    let bucket = state.nats.status_bucket()?;
    let bytes = bucket.get(job_id.to_string()).await.ok()??;
    envelope::decode(&bytes, None).ok()
}

fn accepted(job_id: Uuid, wait: Option<u64>) -> Response {
    let status_url = format!("/api/v1/jobs/{job_id}");
    let body = serde_json::json!({
        "job_id": job_id,
        "status_url": status_url,
        "channel": format!("jobs.{job_id}"),
    });
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&status_url) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    with_job_headers(response, job_id, wait)
}

fn with_job_headers(mut response: Response, job_id: Uuid, wait: Option<u64>) -> Response {
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&job_id.to_string()) {
        headers.insert("x-job-id", v);
    }
    if let Some(w) = wait.and_then(|w| HeaderValue::from_str(&format!("wait={w}")).ok()) {
        headers.insert("preference-applied", w);
    }
    response
}

/// A terminal job as the synchronous API would have answered.
fn outcome_response(record: &JobRecord) -> Response {
    match (record.status, &record.result, &record.error) {
        (JobStatus::Succeeded, Some(result), _) => {
            let status = StatusCode::from_u16(result.http_status).unwrap_or(StatusCode::OK);
            let mut response = (status, Json(result.body.clone())).into_response();
            let location = (status == StatusCode::CREATED)
                .then(|| crate::created::location(&record.kind, &result.body))
                .flatten()
                .and_then(|path| HeaderValue::from_str(&path).ok());
            if let Some(v) = location {
                response.headers_mut().insert(header::LOCATION, v);
            }
            response
        }
        (JobStatus::Dead, _, _) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "job_dead",
            "the job failed after every retry",
        )
        .retry_after(30)
        .into_response(),
        (JobStatus::Cancelled, _, _) => {
            ApiError::new(StatusCode::CONFLICT, "job_cancelled", "the job was cancelled").into_response()
        }
        (_, _, Some(err)) => {
            let status = StatusCode::from_u16(err.http_status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            let mut e = ApiError::new(status, &err.error, err.message.clone());
            e.body.details = err.details.clone();
            e.into_response()
        }
        _ => ApiError::internal(format!(
            "job {} ended {:?} without a result",
            record.job_id, record.status
        ))
        .into_response(),
    }
}
