//! `gad import` (issue 8) against the real services: files of each kind and
//! format applied by the workers' `import` lane, bad rows listed with their
//! lines and reasons, re-runs that publish only duplicates, runs resumed from
//! a checkpoint, redelivered jobs that are not applied twice, and a publisher
//! in Python that follows only the README's wire format.

mod apply;
mod python;
mod rabbitmq;
mod redelivery;
mod rejects;
mod rerun;
mod resume;

use std::time::Duration;

use gad_e2e::TestApp;
use gad_e2e::gad_cli::{CliOutput, GadCli};
use serde_json::Value;
use uuid::Uuid;

/// Longest wait for the workers to settle the jobs of a test's files.
const APPLIED_WITHIN: Duration = Duration::from_secs(120);
/// Longest run of `gad import` on a test's small files.
const RUN_WITHIN: Duration = Duration::from_secs(60);

/// `gad import --kind <kind> <file> --summary-json <extra…>`; the run must succeed.
async fn import(cli: &GadCli, kind: &str, file: &std::path::Path, extra: &[&str]) -> anyhow::Result<Value> {
    let out = run_import(cli, kind, file, extra).await?;
    anyhow::ensure!(out.status.success(), "gad import failed: {out:?}");
    out.summary()
}

async fn run_import(cli: &GadCli, kind: &str, file: &std::path::Path, extra: &[&str]) -> anyhow::Result<CliOutput> {
    let file = file.to_string_lossy();
    let mut args = vec!["import", "--kind", kind, &file, "--summary-json"];
    args.extend_from_slice(extra);
    cli.run(&args, RUN_WITHIN).await
}

/// The summary's counters `[published, duplicates, rejected, skipped]`.
fn counts(summary: &Value) -> [u64; 4] {
    ["published", "duplicates", "rejected", "skipped"].map(|k| summary[k].as_u64().unwrap_or(u64::MAX))
}

/// A finished job's row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct JobRow {
    job_id: Uuid,
    kind: String,
    status: String,
    attempts: i32,
    error: Option<Value>,
    finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Waits until `n` jobs of the `import.*` kinds are terminal; all of them, by job id.
async fn settled_import_jobs(app: &TestApp, n: usize) -> anyhow::Result<Vec<JobRow>> {
    let deadline = tokio::time::Instant::now() + APPLIED_WITHIN;
    loop {
        let rows: Vec<JobRow> = sqlx::query_as(
            "SELECT job_id, kind, status::text AS status, attempts, error, finished_at FROM jobs
             WHERE kind LIKE 'import.%' AND status IN ('succeeded', 'failed', 'dead', 'cancelled')
             ORDER BY job_id",
        )
        .fetch_all(&app.db)
        .await?;
        if rows.len() >= n {
            return Ok(rows);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{} of {n} import jobs settled within {APPLIED_WITHIN:?}",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The workers' import consumer has nothing left: every message delivered and acknowledged.
async fn import_lane_idle(app: &TestApp) -> anyhow::Result<()> {
    let mut stream = app.js.get_stream(app.topology.jobs_stream()).await?;
    let deadline = tokio::time::Instant::now() + APPLIED_WITHIN;
    loop {
        let info = stream.consumer_info("import").await?;
        let left = stream.info().await?.state.messages;
        if info.num_pending == 0 && info.num_ack_pending == 0 && left == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "import lane still busy: {} pending, {} unacknowledged",
            info.num_pending,
            info.num_ack_pending
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The dni of a seeded usuario.
async fn dni(app: &TestApp, email: &str) -> anyhow::Result<String> {
    Ok(
        sqlx::query_scalar("SELECT dni FROM usuarios WHERE lower(email) = lower($1)")
            .bind(email)
            .fetch_one(&app.db)
            .await?,
    )
}

/// The codigo_interno of a seeded usuario's efectivo.
async fn codigo_of(app: &TestApp, usuario_id: i64) -> anyhow::Result<String> {
    Ok(
        sqlx::query_scalar("SELECT codigo_interno FROM efectivos WHERE usuario_id = $1")
            .bind(usuario_id)
            .fetch_one(&app.db)
            .await?,
    )
}

/// A moment just past, in RFC 3339: newer than the seeded positions, never in the future.
fn moments_ago(seconds: i64) -> String {
    gad_shared::time::format(&(chrono::Utc::now() - chrono::Duration::seconds(seconds)))
}
