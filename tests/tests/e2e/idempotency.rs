//! `Idempotency-Key` (domain.md §6.1, §7): a repeat of the same request with
//! the same key returns the original job and enqueues nothing; the key with a
//! different request is 409; keys are per usuario and at most 128 characters.

use std::time::Duration;

use gad_e2e::{ApiResponse, TestApp, spawn_app};
use reqwest::StatusCode;

use crate::error_shape::assert_error;

const NEAREST: &str = "/api/v1/geo/nearest?lat=-34.6037&lng=-58.3816&k=5";
const WITHIN: Duration = Duration::from_secs(15);

async fn nearest(app: &TestApp, path: &str, token: &str, key: &str) -> anyhow::Result<ApiResponse> {
    app.get_with(path, Some(token), &[("Idempotency-Key", key)]).await
}

fn job_id(r: &ApiResponse) -> String {
    assert!(
        r.status == StatusCode::ACCEPTED || r.status == StatusCode::OK,
        "{} {}",
        r.status,
        r.text
    );
    r.header("x-job-id").unwrap_or_default().to_string()
}

/// Messages ever stored in the test's jobs stream (acknowledged ones included).
async fn jobs_published(app: &TestApp) -> anyhow::Result<u64> {
    let mut stream = app.js.get_stream(app.topology.jobs_stream()).await?;
    Ok(stream.info().await?.state.last_sequence)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_and_request_return_the_original_job_once() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let token = &app.supervisor.token;
    let first = nearest(&app, NEAREST, token, "order-42").await?;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text);
    let original = job_id(&first);
    assert!(uuid::Uuid::parse_str(&original).is_ok(), "{original:?}");

    // While queued or running, and again once it has finished.
    let repeat = nearest(&app, NEAREST, token, "order-42").await?;
    assert_eq!(job_id(&repeat), original);
    let job = app.wait_for_job(&original, token, WITHIN).await?;
    assert_eq!(job["status"], "succeeded", "{job}");
    let late = nearest(&app, NEAREST, token, "order-42").await?;
    assert_eq!(job_id(&late), original);
    // A finished job answers as the synchronous API would.
    assert_eq!(late.status, StatusCode::OK, "{}", late.text);
    assert_eq!(late.body, job["result"]["body"]);

    assert_eq!(jobs_published(&app).await?, 1, "one message in the jobs stream");
    assert_eq!(app.jobs_rows().await?, 1);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_for_another_request_is_409_and_keys_are_per_usuario() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let first = nearest(&app, NEAREST, &app.supervisor.token, "k-1").await?;
    let original = job_id(&first);

    let other = NEAREST.replace("k=5", "k=6");
    let r = nearest(&app, &other, &app.supervisor.token, "k-1").await?;
    assert_error(&r, StatusCode::CONFLICT, "idempotency_key_reused");

    // Another usuario's identical key is another job.
    let theirs = nearest(&app, NEAREST, &app.admin.token, "k-1").await?;
    let theirs = job_id(&theirs);
    assert_ne!(theirs, original);

    let deadline = tokio::time::Instant::now() + WITHIN;
    while jobs_published(&app).await? < 2 {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "second job not published");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        jobs_published(&app).await?,
        2,
        "the conflicting request enqueued nothing"
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_longer_than_128_characters_are_refused() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let r = nearest(&app, NEAREST, &app.supervisor.token, &"k".repeat(129)).await?;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.body["details"]["fields"][0]["field"], "Idempotency-Key", "{}", r.text);
    assert_eq!(app.jobs_stream_messages().await?.unwrap_or(0), 0);

    let r = nearest(&app, NEAREST, &app.supervisor.token, &"k".repeat(128)).await?;
    assert_eq!(r.status, StatusCode::ACCEPTED, "128 characters are allowed: {}", r.text);
    app.stop().await
}
