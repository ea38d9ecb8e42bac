//! Submitting many jobs over HTTP and waiting for them in SQL.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// HTTP submissions to one ingress as one usuario.
#[derive(Clone)]
pub struct Submitter {
    pub client: reqwest::Client,
    pub http: String,
    pub token: String,
}

/// How many submissions are in flight at once.
const IN_FLIGHT: usize = 32;

impl Submitter {
    /// `POST /api/v1/tasks` with `Prefer: respond-async`; the job id of a 202,
    /// `None` for any other answer (a 503 while NATS is down).
    pub async fn task(&self, codigo: &str, delegado: i64) -> anyhow::Result<Option<Uuid>> {
        let body = json!({
            "codigo": codigo,
            "titulo": "Tarea de carga",
            "tipo": "patrullaje",
            "inicio_programado": gad_shared::time::format(&(chrono::Utc::now() + chrono::Duration::hours(1))),
            "delegado_usuario_id": delegado,
        });
        let r = self
            .client
            .post(format!("{}/api/v1/tasks", self.http))
            .bearer_auth(&self.token)
            .header("Prefer", "respond-async")
            .json(&body)
            .send()
            .await?;
        accepted(r).await
    }

    /// `GET /api/v1/geo/nearest` (queued: 202 without `Prefer`).
    pub async fn nearest(&self) -> anyhow::Result<Option<Uuid>> {
        let r = self
            .client
            .get(format!("{}/api/v1/geo/nearest?lat=-34.6&lng=-58.4&k=3", self.http))
            .bearer_auth(&self.token)
            .send()
            .await?;
        accepted(r).await
    }

    /// `n` task creations with codigos `<prefix>-<i>`, all of which must be accepted.
    pub async fn tasks(&self, prefix: &str, delegado: i64, n: usize) -> anyhow::Result<Vec<Uuid>> {
        futures::stream::iter(0..n)
            .map(|i| {
                let me = self.clone();
                let codigo = format!("{prefix}-{i:05}");
                async move {
                    me.task(&codigo, delegado)
                        .await?
                        .with_context(|| format!("{codigo} not accepted"))
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .try_collect()
            .await
    }

    /// `n` nearest queries, all of which must be accepted.
    pub async fn nearests(&self, n: usize) -> anyhow::Result<Vec<Uuid>> {
        futures::stream::iter(0..n)
            .map(|_| {
                let me = self.clone();
                async move { me.nearest().await?.context("nearest not accepted") }
            })
            .buffer_unordered(IN_FLIGHT)
            .try_collect()
            .await
    }
}

async fn accepted(r: reqwest::Response) -> anyhow::Result<Option<Uuid>> {
    if r.status() != StatusCode::ACCEPTED {
        return Ok(None);
    }
    let body: Value = r.json().await?;
    let id = body["job_id"].as_str().context("202 without job_id")?;
    Ok(Some(id.parse()?))
}

/// Rows of `ids` by status.
pub async fn statuses(db: &PgPool, ids: &[Uuid]) -> anyhow::Result<BTreeMap<String, i64>> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status::text, count(*) FROM jobs WHERE job_id = ANY($1) GROUP BY status")
            .bind(ids)
            .fetch_all(db)
            .await?;
    Ok(rows.into_iter().collect())
}

pub async fn count_with(db: &PgPool, ids: &[Uuid], status: &str) -> anyhow::Result<i64> {
    Ok(statuses(db, ids).await?.get(status).copied().unwrap_or(0))
}

/// Waits until every job of `ids` has a terminal row; returns the counts.
pub async fn wait_terminal(db: &PgPool, ids: &[Uuid], within: Duration) -> anyhow::Result<BTreeMap<String, i64>> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let by_status = statuses(db, ids).await?;
        let terminal: i64 = ["succeeded", "failed", "dead", "cancelled"]
            .iter()
            .filter_map(|s| by_status.get(*s))
            .sum();
        if terminal == ids.len() as i64 {
            return Ok(by_status);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{} jobs, {terminal} terminal after {within:?}: {by_status:?}",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until at least `n` of `ids` succeeded.
pub async fn wait_succeeded(db: &PgPool, ids: &[Uuid], n: i64, within: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    while count_with(db, ids, "succeeded").await? < n {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "fewer than {n} succeeded within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Business effects of task creations: the tareas whose codigo starts with `prefix`,
/// and how many creation history rows each job wrote (each must be 1).
pub async fn task_effects(db: &PgPool, prefix: &str, ids: &[Uuid]) -> anyhow::Result<(i64, BTreeMap<i64, i64>)> {
    let (tareas,): (i64,) = sqlx::query_as("SELECT count(*) FROM tareas WHERE codigo LIKE $1 || '%'")
        .bind(prefix)
        .fetch_one(db)
        .await?;
    let per_job: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT n, count(*) FROM (
             SELECT j.id, count(h.id) AS n FROM unnest($1::uuid[]) AS j(id)
               LEFT JOIN historial_estados h ON h.job_id = j.id AND h.estado_anterior IS NULL
              GROUP BY j.id) AS c
          GROUP BY n",
    )
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok((tareas, per_job.into_iter().collect()))
}

/// Messages on the test's `GAD_DLQ`.
pub async fn dlq_messages(js: &async_nats::jetstream::Context, stream: String) -> anyhow::Result<u64> {
    let mut stream = js.get_stream(stream).await?;
    Ok(stream.info().await?.state.messages)
}

/// A unique codigo prefix for one test run (codigos are at most 20 characters).
pub fn prefix(letter: char) -> String {
    format!("{letter}{:06X}", rand::random::<u32>() & 0xFF_FFFF)
}
