//! What a DLQ action writes in PostgreSQL, in one transaction: the `jobs`
//! row's new status, the audit row and the `job_updated` event (through the
//! outbox, so it goes out only after the commit).

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::Actor;
use crate::job::{JobError, JobRecord, JobResult, JobStatus};

/// The relay's wake-up channel (`gad_workers::effects::outbox::NOTIFY_CHANNEL`).
const OUTBOX_CHANNEL: &str = "gad_outbox";

const COLUMNS: &str = "job_id, kind, status, attempts, max_attempts, submitted_by, payload_summary, result, error, \
                       created_at, started_at, finished_at";

#[derive(sqlx::FromRow)]
struct Row {
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

impl From<Row> for JobRecord {
    fn from(r: Row) -> Self {
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

pub async fn load_many(db: &PgPool, ids: &[Uuid]) -> Result<Vec<JobRecord>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM jobs WHERE job_id = ANY($1)"
    )))
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(JobRecord::from).collect())
}

/// The row, locked until the transaction ends, so a worker's upsert of the
/// same job waits for the operator's decision.
pub async fn lock(tx: &mut Transaction<'_, Postgres>, job_id: Uuid) -> Result<Option<JobRecord>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM jobs WHERE job_id = $1 FOR UPDATE"
    )))
    .bind(job_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(JobRecord::from))
}

/// Writes `after` over the row (inserting it when the row was purged).
pub async fn store(tx: &mut Transaction<'_, Postgres>, after: &JobRecord) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO jobs (job_id, kind, status, attempts, max_attempts, submitted_by, payload_summary, result, error,
                           created_at, started_at, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (job_id) DO UPDATE
            SET status = EXCLUDED.status, attempts = EXCLUDED.attempts, result = EXCLUDED.result,
                error = EXCLUDED.error, started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at",
    )
    .bind(after.job_id)
    .bind(&after.kind)
    .bind(after.status)
    .bind(after.attempts as i32)
    .bind(after.max_attempts.max(1) as i32)
    .bind(after.submitted_by)
    .bind(&after.payload_summary)
    .bind(after.result.as_ref().map(|r| json!(r)))
    .bind(after.error.as_ref().map(|e| json!(e)))
    .bind(after.created_at)
    .bind(after.started_at)
    .bind(after.finished_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Replays already made of this job: the next one is `r<n + 1>`.
pub async fn replays(tx: &mut Transaction<'_, Postgres>, job_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE job_id = $1 AND action = 'dlq_replayed'")
        .bind(job_id)
        .fetch_one(&mut **tx)
        .await
}

pub struct Audit<'a> {
    pub action: &'static str,
    pub resource_id: String,
    pub job_id: Option<Uuid>,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
    pub actor: &'a Actor,
}

pub async fn audit(tx: &mut Transaction<'_, Postgres>, a: Audit<'_>) -> Result<(), sqlx::Error> {
    let clip = |s: &Option<String>, n: usize| s.as_ref().map(|s| s.chars().take(n).collect::<String>());
    sqlx::query(
        "INSERT INTO audit_log (actor_usuario_id, action, severity, resource_type, resource_id, before, after,
                                request_id, job_id, ip, user_agent)
         VALUES ($1, $2, 'medium', 'job', $3, $4, $5, $6, $7, $8::inet, $9)",
    )
    .bind(a.actor.usuario_id)
    .bind(a.action)
    .bind(a.resource_id)
    .bind(a.before)
    .bind(a.after)
    .bind(clip(&a.actor.request_id, 64))
    .bind(a.job_id)
    .bind(a.actor.ip.as_deref())
    .bind(clip(&a.actor.user_agent, 512))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// `job_updated` for `jobs.{id}` watchers, published by the relay after commit.
pub async fn announce(tx: &mut Transaction<'_, Postgres>, record: &JobRecord) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox_events (event_id, event_type, topics, payload, job_id)
         VALUES ($1, 'job_updated', $2, $3, $4)",
    )
    .bind(Uuid::now_v7())
    .bind(vec![format!("jobs.{}", record.job_id)])
    .bind(record.job_updated_data())
    .bind(record.job_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(OUTBOX_CHANNEL)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
