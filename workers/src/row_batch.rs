//! Group commit for read-only jobs' rows. One `INSERT` per job made the
//! commit (a WAL flush) the most expensive step of a nearest query; rows that
//! arrive while a batch is being written wait and go together in the next one.
//! Each caller still learns whether its own row was written before it acks,
//! so batching changes when a row is durable, never whether.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// A read-only job's whole run, as one `jobs` row.
pub struct Row {
    pub job_id: Uuid,
    pub kind: String,
    pub status: &'static str,
    pub attempts: i32,
    pub max_attempts: i32,
    pub submitted_by: Option<i64>,
    pub request_id: Option<String>,
    pub payload_summary: Value,
    pub result: Option<Value>,
    pub error: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum BatchError {
    #[error("job row batch failed: {0}")]
    Db(Arc<sqlx::Error>),
    #[error("job row writer stopped")]
    Stopped,
}

struct Pending {
    row: Row,
    /// `true`: written; `false`: the row was already terminal and kept.
    reply: oneshot::Sender<Result<bool, BatchError>>,
}

#[derive(Clone)]
pub struct RowBatcher {
    tx: mpsc::Sender<Pending>,
}

impl RowBatcher {
    /// `capacity` bounds the rows waiting; `max_batch` the rows per statement.
    pub fn spawn(db: PgPool, capacity: usize, max_batch: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        tokio::spawn(write_batches(db, rx, max_batch.max(1)));
        Self { tx }
    }

    /// Writes `row` unless the job's row is already terminal; `Ok(false)` then.
    pub async fn write(&self, row: Row) -> Result<bool, BatchError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Pending { row, reply })
            .await
            .map_err(|_| BatchError::Stopped)?;
        answer.await.map_err(|_| BatchError::Stopped)?
    }
}

/// Ends when every sender is gone, after answering what it holds.
async fn write_batches(db: PgPool, mut rx: mpsc::Receiver<Pending>, max_batch: usize) {
    let mut batch = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        metrics::histogram!(gad_shared::metric_names::JOB_ROW_BATCH_SIZE).record(batch.len() as f64);
        let rows: Vec<&Row> = batch.iter().map(|p| &p.row).collect();
        match insert(&db, &rows).await {
            Ok(written) => {
                for p in batch.drain(..) {
                    let _ = p.reply.send(Ok(written.contains(&p.row.job_id)));
                }
            }
            Err(e) => {
                let e = BatchError::Db(Arc::new(e));
                for p in batch.drain(..) {
                    let _ = p.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// One statement for the whole batch; returns the ids it wrote. A job may
/// appear twice in a batch only through a redelivery racing itself: the first
/// row wins there, as it would have with one statement each.
async fn insert(db: &PgPool, rows: &[&Row]) -> Result<Vec<Uuid>, sqlx::Error> {
    let mut seen = std::collections::HashSet::with_capacity(rows.len());
    let rows: Vec<&Row> = rows.iter().copied().filter(|r| seen.insert(r.job_id)).collect();
    let col = |f: fn(&Row) -> Option<Value>| rows.iter().map(|r| f(r)).collect::<Vec<_>>();
    sqlx::query_scalar(
        "INSERT INTO jobs (job_id, kind, status, attempts, max_attempts, submitted_by, request_id, payload_summary,
                           result, error, created_at, started_at, finished_at)
         SELECT * FROM UNNEST($1::uuid[], $2::varchar[], $3::job_status[], $4::int4[], $5::int4[], $6::int8[],
                              $7::varchar[], $8::jsonb[], $9::jsonb[], $10::jsonb[], $11::timestamptz[],
                              $12::timestamptz[], $13::timestamptz[])
         ON CONFLICT (job_id) DO UPDATE
            SET status = EXCLUDED.status, attempts = EXCLUDED.attempts, result = EXCLUDED.result,
                error = EXCLUDED.error, started_at = COALESCE(jobs.started_at, EXCLUDED.started_at),
                finished_at = EXCLUDED.finished_at
          WHERE jobs.status NOT IN ('succeeded', 'failed', 'dead', 'cancelled')
         RETURNING job_id",
    )
    .bind(rows.iter().map(|r| r.job_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.status).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.attempts).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.max_attempts).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.submitted_by).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.request_id.as_deref()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.payload_summary.clone()).collect::<Vec<_>>())
    .bind(col(|r| r.result.clone()))
    .bind(col(|r| r.error.clone()))
    .bind(rows.iter().map(|r| r.created_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.started_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.finished_at).collect::<Vec<_>>())
    .fetch_all(db)
    .await
}
