//! The retention purge (domain.md §2.1): terminal `jobs` rows older than
//! `JOBS_RETENTION_DAYS`, `notifications` older than 90 days, `audit_log` rows
//! past their `retention_until` (the only deletes its append-only trigger
//! permits) and published `outbox_events` older than a day.
//!
//! Rows go in bounded batches, each its own statement, so no purge holds locks
//! for long or competes with the business transactions for more than a batch.
//! With several worker processes, one purges per round (a session advisory
//! lock), and `SKIP LOCKED` keeps a batch from waiting on rows in use.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::settings::WorkersSection;

/// Advisory lock key of the purge ("GADRETEN").
pub const PURGE_LOCK: i64 = 0x4741_4452_4554_454e;

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub interval: Duration,
    pub jobs_days: u32,
    pub batch: u32,
}

impl From<&WorkersSection> for Policy {
    fn from(s: &WorkersSection) -> Self {
        Self {
            interval: s.retention_interval,
            jobs_days: s.jobs_retention_days,
            batch: s.retention_batch.max(1),
        }
    }
}

/// One table's rule: `$1` is the batch size, `$2` (when used) the age in days.
struct Purge {
    table: &'static str,
    sql: &'static str,
    takes_days: bool,
}

const PURGES: [Purge; 4] = [
    Purge {
        table: "jobs",
        sql: "DELETE FROM jobs WHERE job_id IN (
                SELECT job_id FROM jobs
                WHERE status IN ('succeeded', 'failed', 'dead', 'cancelled')
                  AND created_at < now() - make_interval(days => $2)
                ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED)",
        takes_days: true,
    },
    Purge {
        table: "notifications",
        sql: "DELETE FROM notifications WHERE id IN (
                SELECT id FROM notifications WHERE created_at < now() - interval '90 days'
                LIMIT $1 FOR UPDATE SKIP LOCKED)",
        takes_days: false,
    },
    Purge {
        table: "audit_log",
        sql: "DELETE FROM audit_log WHERE id IN (
                SELECT id FROM audit_log WHERE retention_until < current_date
                LIMIT $1 FOR UPDATE SKIP LOCKED)",
        takes_days: false,
    },
    Purge {
        table: "outbox_events",
        sql: "DELETE FROM outbox_events WHERE id IN (
                SELECT id FROM outbox_events WHERE published_at < now() - interval '1 day'
                ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)",
        takes_days: false,
    },
];

/// Purges at start and then every `policy.interval` until `cancel` fires.
pub async fn run(db: PgPool, policy: Policy, cancel: CancellationToken) {
    loop {
        match purge_once(&db, policy, &cancel).await {
            Ok(Some(counts)) => {
                for (table, n) in counts.into_iter().filter(|(_, n)| *n > 0) {
                    tracing::info!(table, rows = n, "retention purge");
                    metrics::counter!(gad_shared::metric_names::RETENTION_PURGED_ROWS, "table" => table).increment(n);
                }
            }
            Ok(None) => tracing::debug!("another process is purging"),
            Err(e) => tracing::warn!(error = %e, "retention purge interrupted; next round retries"),
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(policy.interval) => {}
        }
    }
}

/// One round over every table; `None` when another process holds the purge.
pub async fn purge_once(
    db: &PgPool,
    policy: Policy,
    cancel: &CancellationToken,
) -> Result<Option<Vec<(&'static str, u64)>>, sqlx::Error> {
    let mut conn = db.acquire().await?;
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(PURGE_LOCK)
        .fetch_one(&mut *conn)
        .await?;
    if !got {
        return Ok(None);
    }
    let mut counts = Vec::with_capacity(PURGES.len());
    let mut outcome = Ok(());
    'tables: for purge in &PURGES {
        let mut total = 0;
        loop {
            if cancel.is_cancelled() {
                break 'tables;
            }
            let mut query = sqlx::query(purge.sql).bind(i64::from(policy.batch));
            if purge.takes_days {
                query = query.bind(i32::try_from(policy.jobs_days).unwrap_or(i32::MAX));
            }
            let deleted = query.execute(&mut *conn).await;
            match deleted {
                Ok(r) => {
                    total += r.rows_affected();
                    if r.rows_affected() < u64::from(policy.batch) {
                        break;
                    }
                }
                Err(e) => {
                    outcome = Err(e);
                    counts.push((purge.table, total));
                    break 'tables;
                }
            }
        }
        counts.push((purge.table, total));
    }
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(PURGE_LOCK)
        .execute(&mut *conn)
        .await;
    if unlocked.is_err() {
        // Closing the session is what releases the lock then.
        drop(conn.detach());
    }
    outcome.map(|()| Some(counts))
}
