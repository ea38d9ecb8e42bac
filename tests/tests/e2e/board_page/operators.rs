//! An administrator's operators' view: a wrong password is told plainly,
//! the pipeline's figures are on screen, a dead job is replayed from the DLQ
//! with a click and runs again, and another is discarded.

use std::time::Duration;

use anyhow::ensure;
use gad_e2e::browser::Browser;
use gad_e2e::{SEED_PASSWORD, TestApp};

use super::{WITHIN, finish, log_in, open, wait_live};
use crate::dlq::dead_job;

#[tokio::test]
async fn an_administrator_sees_the_pipeline_and_replays_a_dead_job() -> anyhow::Result<()> {
    let (app, mut browser) = open("board_page_operators").await?;
    let outcome = scenario(&app, &mut browser).await;
    finish(app, browser, outcome).await
}

async fn scenario(app: &TestApp, browser: &mut Browser) -> anyhow::Result<()> {
    let dead = dead_job(app, app.admin.id).await?;
    let unwanted = dead_job(app, app.admin.id).await?;

    log_in(browser, app, &app.admin.email, "not-the-password").await?;
    let error = browser.wait_for("#login-error:not(:empty)", WITHIN).await?;
    let said = error.text().await?;
    ensure!(said.contains("incorrectos"), "a wrong password reads: {said}");
    browser.screenshot("wrong-password").await?;

    log_in(browser, app, &app.admin.email, SEED_PASSWORD).await?;
    wait_live(browser).await?;
    browser.wait_for("#tab-ops", WITHIN).await?.click().await?;
    let row = format!("tr.dlq[data-job-id='{dead}']");
    browser.wait_for(&row, WITHIN).await?;
    // Figures from each source: jobs (PostgreSQL), lag (JetStream), the
    // broadcaster's connections (this page's own among them).
    let jobs = browser.wait_for("#ops-jobs-status td", WITHIN).await?;
    ensure!(!jobs.text().await?.is_empty());
    let lag = browser.wait_for("#ops-lag tbody", WITHIN).await?.text().await?;
    ensure!(lag.contains("geo"), "no geo worker group in the lag table: {lag}");
    let ws = browser.wait_for("#ops-ws tbody", WITHIN).await?.text().await?;
    ensure!(ws.contains("Conexiones"), "no WebSocket figures: {ws}");
    let size = browser.wait_for("#dlq-size", WITHIN).await?.text().await?;
    ensure!(size == "2", "the DLQ size reads {size}");
    browser.screenshot("operators").await?;

    browser
        .wait_for(&format!("{row} button[data-dlq='replay']"), WITHIN)
        .await?
        .click()
        .await?;
    browser
        .wait_for(&format!("#dlq-message[data-job-id='{dead}'][data-op='replay']"), WITHIN)
        .await?;
    browser.wait_gone(&row, WITHIN).await?;
    let status = wait_status(app, dead, "succeeded").await?;
    ensure!(status == "succeeded", "the replayed job is {status}");
    browser.screenshot("replayed").await?;

    let other = format!("tr.dlq[data-job-id='{unwanted}']");
    browser
        .wait_for(&format!("{other} button[data-dlq='discard']"), WITHIN)
        .await?
        .click()
        .await?;
    browser
        .wait_for(
            &format!("#dlq-message[data-job-id='{unwanted}'][data-op='discard']"),
            WITHIN,
        )
        .await?;
    browser.wait_gone(&other, WITHIN).await?;
    let (status, reason): (String, Option<String>) =
        sqlx::query_as("SELECT status::text, error ->> 'error' FROM jobs WHERE job_id = $1")
            .bind(unwanted)
            .fetch_one(&app.db)
            .await?;
    ensure!(
        status == "cancelled" && reason.as_deref() == Some("discarded"),
        "the discarded job is {status} ({reason:?})"
    );
    browser.wait_for("#dlq-list td.note", WITHIN).await?;
    browser.screenshot("discarded").await?;
    Ok(())
}

/// The job's status once it is `want`, or the last one seen.
async fn wait_status(app: &TestApp, job: uuid::Uuid, want: &str) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let (status,): (String,) = sqlx::query_as("SELECT status::text FROM jobs WHERE job_id = $1")
            .bind(job)
            .fetch_one(&app.db)
            .await?;
        if status == want || tokio::time::Instant::now() >= deadline {
            return Ok(status);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
