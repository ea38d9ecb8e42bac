//! Where a job's progress is recorded: the durable `jobs` row (created by the
//! worker that first picks the job), the fast status in the key-value bucket
//! where ingress and WebSocket subscribers look, and a `job_updated` event.

use async_nats::jetstream::{self, kv};
use chrono::Utc;
use gad_shared::envelope::{self, JobEnvelope};
use gad_shared::job::{JobRecord, JobStatus};
use gad_shared::topology::{JOB_EVENT_TTL, Topology};
use serde_json::json;
use sqlx::PgPool;

use crate::events::{EventError, publish_event};
use crate::row_batch::{BatchError, Row, RowBatcher};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("jobs row: {0}")]
    Database(#[from] sqlx::Error),
    #[error("job status bucket: {0}")]
    Status(String),
    #[error(transparent)]
    Event(#[from] EventError),
    #[error(transparent)]
    Batch(#[from] BatchError),
}

#[derive(Clone)]
pub struct JobStore {
    pub db: PgPool,
    pub status: kv::Store,
    pub js: jetstream::Context,
    pub topology: Topology,
    /// Read-only jobs' rows, group-committed.
    pub rows: RowBatcher,
}

impl JobStore {
    /// Marks delivery `attempt` as running, or reports that the job already
    /// reached a terminal status: a redelivery after success changes nothing,
    /// but its outcome is announced again in case the first announcement was lost.
    ///
    /// Each delivery of a job has a higher attempt than the one before (a
    /// crash, a retry, a hand-back all count), so a row that already holds
    /// this attempt or a later one belongs to another copy of the same job:
    /// a duplicate publish, which RabbitMQ does not drop as JetStream does.
    pub async fn start(&self, job: &JobEnvelope, max_attempts: u32, attempt: u32) -> Result<Started, sqlx::Error> {
        let summary = redact(&job.payload);
        let row: Option<(chrono::DateTime<Utc>,)> = sqlx::query_as(
            "INSERT INTO jobs (job_id, kind, status, attempts, max_attempts, submitted_by, request_id, payload_summary, created_at, started_at)
             VALUES ($1, $2, 'running', $3, $4, $5, $6, $7, $8, now())
             ON CONFLICT (job_id) DO UPDATE
                SET status = 'running', attempts = EXCLUDED.attempts, started_at = COALESCE(jobs.started_at, now())
              WHERE jobs.status NOT IN ('succeeded', 'failed', 'dead', 'cancelled')
                AND jobs.attempts < EXCLUDED.attempts
             RETURNING started_at",
        )
        .bind(job.job_id)
        .bind(&job.kind)
        .bind(attempt as i32)
        .bind(max_attempts as i32)
        .bind(job.submitted_by)
        .bind(job.request_id.as_deref().map(|r| r.chars().take(64).collect::<String>()))
        .bind(&summary)
        .bind(job.submitted_at)
        .fetch_optional(&self.db)
        .await?;
        let Some((started_at,)) = row else {
            return Ok(match self.load(job.job_id).await? {
                Some(done) if done.status.is_terminal() => Started::AlreadyFinished(done),
                Some(_) => Started::Claimed,
                None => Started::Gone,
            });
        };
        Ok(Started::Running(JobRecord {
            job_id: job.job_id,
            kind: job.kind.clone(),
            status: JobStatus::Running,
            attempts: attempt,
            max_attempts,
            submitted_by: job.submitted_by,
            payload_summary: summary,
            result: None,
            error: None,
            created_at: job.submitted_at,
            started_at: Some(started_at),
            finished_at: None,
        }))
    }

    /// The durable record of a job.
    pub async fn load(&self, job_id: uuid::Uuid) -> Result<Option<JobRecord>, sqlx::Error> {
        let row: Option<JobRow> = sqlx::query_as(
            "SELECT job_id, kind, status, attempts, max_attempts, submitted_by, payload_summary, result, error,
                    created_at, started_at, finished_at FROM jobs WHERE job_id = $1",
        )
        .bind(job_id)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.map(JobRow::into_record))
    }

    /// Records a read-only job's whole run in one statement (created, started
    /// and finished), then makes it visible. A row already terminal is left alone.
    pub async fn record_read_only(&self, job: &JobEnvelope, record: &JobRecord) -> Result<(), StoreError> {
        let finished = record.status.is_terminal().then(Utc::now);
        let written = self
            .rows
            .write(Row {
                job_id: record.job_id,
                kind: record.kind.clone(),
                status: record.status.as_str(),
                attempts: record.attempts as i32,
                max_attempts: record.max_attempts as i32,
                submitted_by: record.submitted_by,
                // varchar(64) counts characters; the id came from a client header.
                request_id: job.request_id.as_deref().map(|r| r.chars().take(64).collect()),
                payload_summary: record.payload_summary.clone(),
                result: record.result.as_ref().map(|r| json!(r)),
                error: record.error.as_ref().map(|e| json!(e)),
                created_at: record.created_at,
                started_at: record.started_at,
                finished_at: finished,
            })
            .await?;
        if !written {
            // Already terminal (cancelled meanwhile, or finished by another
            // delivery): the row wins, and the status must say what it says.
            return match self.load(record.job_id).await? {
                Some(stored) => self.announce(&stored).await,
                None => Ok(()),
            };
        }
        let record = JobRecord {
            finished_at: finished,
            ..record.clone()
        };
        self.announce(&record).await
    }

    /// Writes the outcome durably, then makes it visible (status and event).
    pub async fn finish(&self, record: &JobRecord) -> Result<(), StoreError> {
        let finished = record.status.is_terminal().then(Utc::now);
        sqlx::query(
            "UPDATE jobs SET status = $2, attempts = $3, result = $4, error = $5, finished_at = $6 WHERE job_id = $1",
        )
        .bind(record.job_id)
        .bind(record.status)
        .bind(record.attempts as i32)
        .bind(record.result.as_ref().map(|r| json!(r)))
        .bind(record.error.as_ref().map(|e| json!(e)))
        .bind(finished)
        .execute(&self.db)
        .await?;
        let record = JobRecord {
            finished_at: finished,
            ..record.clone()
        };
        self.announce(&record).await
    }

    /// Publishes the record to the status bucket and as a `job_updated` event.
    pub async fn announce(&self, record: &JobRecord) -> Result<(), StoreError> {
        let value = envelope::encode(record).map_err(|e| StoreError::Status(e.to_string()))?;
        let put = self.status.put(record.job_id.to_string(), value);
        let event = self.job_updated(record);
        let (put, event) = tokio::join!(put, event);
        put.map_err(|e| StoreError::Status(e.to_string()))?;
        event?;
        Ok(())
    }

    async fn job_updated(&self, record: &JobRecord) -> Result<(), EventError> {
        let topics = [format!("jobs.{}", record.job_id)];
        publish_event(
            &self.js,
            &self.topology,
            "job_updated",
            record.job_updated_data(),
            &topics,
            Some(JOB_EVENT_TTL),
        )
        .await
    }
}

pub enum Started {
    Running(JobRecord),
    AlreadyFinished(JobRecord),
    /// The row vanished between the upsert and the read (retention purge).
    Gone,
    /// Another copy of the job holds this attempt, or a later one.
    Claimed,
}

#[derive(sqlx::FromRow)]
struct JobRow {
    job_id: uuid::Uuid,
    kind: String,
    status: JobStatus,
    attempts: i32,
    max_attempts: i32,
    submitted_by: Option<i64>,
    payload_summary: serde_json::Value,
    result: Option<serde_json::Value>,
    error: Option<serde_json::Value>,
    created_at: chrono::DateTime<Utc>,
    started_at: Option<chrono::DateTime<Utc>>,
    finished_at: Option<chrono::DateTime<Utc>>,
}

impl JobRow {
    fn into_record(self) -> JobRecord {
        JobRecord {
            job_id: self.job_id,
            kind: self.kind,
            status: self.status,
            attempts: self.attempts.max(0) as u32,
            max_attempts: self.max_attempts.max(0) as u32,
            submitted_by: self.submitted_by,
            payload_summary: self.payload_summary,
            result: self.result.and_then(|v| serde_json::from_value(v).ok()),
            error: self.error.and_then(|v| serde_json::from_value(v).ok()),
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
        }
    }
}

/// Inputs as shown on the job: secrets never reach the `jobs` row or a poll.
pub fn redact(payload: &serde_json::Value) -> serde_json::Value {
    match payload {
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let secret = ["password", "token", "secret"]
                    .iter()
                    .any(|s| k.to_ascii_lowercase().contains(s));
                (k.clone(), if secret { json!("<redacted>") } else { redact(v) })
            })
            .collect::<serde_json::Map<_, _>>()
            .into(),
        serde_json::Value::Array(items) => items.iter().map(redact).collect::<Vec<_>>().into(),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let v = serde_json::json!({"email": "a@b.c", "password": "hunter22", "nested": [{"current_password": "x"}]});
        let r = super::redact(&v);
        assert_eq!(r["email"], "a@b.c");
        assert_eq!(r["password"], "<redacted>");
        assert_eq!(r["nested"][0]["current_password"], "<redacted>");
    }
}
