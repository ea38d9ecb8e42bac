//! A job that always fails transiently ends `dead` after exactly
//! `max_attempts`, each retry delay within its bound base·2ⁿ⁻¹ (capped),
//! the bounds growing; replayed from the DLQ, it runs again.
//!
//! The failure: the test holds `efectivos` locked, so every KNN query waits
//! until its statement timeout (a transient error that is the query's, not
//! the database's: the breaker stays closed and the job is not held).

use std::time::Duration;

use gad_e2e::users::ADMIN;
use gad_shared::job::kind_spec;
use reqwest::{Method, StatusCode};

use super::load::Submitter;
use crate::custom_app::CustomApp;

const KNN_TIMEOUT: Duration = Duration::from_millis(100);
const BASE: Duration = Duration::from_millis(200);
const CAP: Duration = Duration::from_millis(800);
/// Scheduling, the row write and the redelivery on a busy 2-core machine.
const SLACK: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_always_transient_job_dies_after_max_attempts_with_bounded_growing_delays() -> anyhow::Result<()> {
    let mut app = CustomApp::new(|iso| iso.postgres.knn_timeout = KNN_TIMEOUT).await?;
    app.start_workers(|s| {
        s.workers.groups = vec!["geo".into()];
        s.workers.backoff_base = BASE;
        s.workers.backoff_cap = CAP;
    })
    .await?;
    app.start_ingress().await?;
    let admin = app.user(ADMIN).await?;
    let max_attempts = kind_spec("geo.nearest").map(|k| k.max_attempts).unwrap_or(0);
    anyhow::ensure!(max_attempts >= 3, "geo.nearest retries");

    let mut lock = app.db.begin().await?;
    sqlx::query("LOCK TABLE efectivos IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await?;
    let submit = Submitter {
        client: app.client.clone(),
        http: app.http.clone().unwrap_or_default(),
        token: admin.token.clone(),
    };
    let Some(job_id) = submit.nearest().await? else {
        anyhow::bail!("nearest not accepted");
    };

    // Each attempt ends with one write of the row: its updated_at is when
    // that attempt failed. Seen every 10 ms, far below an attempt's length.
    let mut ended: Vec<chrono::DateTime<chrono::Utc>> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        let row: Option<(i32, String, chrono::DateTime<chrono::Utc>)> =
            sqlx::query_as("SELECT attempts, status::text, updated_at FROM jobs WHERE job_id = $1")
                .bind(job_id)
                .fetch_optional(&app.db)
                .await?;
        if let Some((attempts, status, updated_at)) = row {
            if attempts as usize > ended.len() {
                anyhow::ensure!(
                    attempts as usize == ended.len() + 1,
                    "attempt skipped: {attempts} after {}",
                    ended.len()
                );
                ended.push(updated_at);
            }
            if status != "queued" && status != "running" {
                break status;
            }
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "not dead after 30 s: {} attempts",
            ended.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(status, "dead");
    assert_eq!(ended.len(), max_attempts as usize, "exactly max_attempts deliveries");

    let mut bounds = Vec::new();
    for n in 1..max_attempts as usize {
        let bound = BASE.saturating_mul(1 << (n - 1)).min(CAP);
        bounds.push(bound);
        // Between two failures: the delay, then the next run (a statement timeout).
        let gap = (ended[n] - ended[n - 1]).to_std()?;
        assert!(gap >= KNN_TIMEOUT, "retry {n} came before its run could fail: {gap:?}");
        let delay = gap - KNN_TIMEOUT;
        assert!(
            delay <= bound + SLACK,
            "retry {n}: delay {delay:?} above its bound {bound:?}"
        );
    }
    assert!(
        bounds.windows(2).all(|w| w[0] <= w[1]),
        "bounds never shrink: {bounds:?}"
    );
    assert!(bounds.last() > bounds.first(), "bounds grow: {bounds:?}");

    let r = app.send(Method::GET, "/api/v1/admin/dlq", &admin.token).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains(&job_id.to_string()), "listed in the DLQ: {}", r.text);

    // The database is fine again: the replay runs to success.
    lock.rollback().await?;
    let r = app
        .send(
            Method::POST,
            &format!("/api/v1/admin/dlq/{job_id}/replay"),
            &admin.token,
        )
        .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let status: String = sqlx::query_scalar("SELECT status::text FROM jobs WHERE job_id = $1")
            .bind(job_id)
            .fetch_one(&app.db)
            .await?;
        if status == "succeeded" {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "replay did not succeed: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await
}
