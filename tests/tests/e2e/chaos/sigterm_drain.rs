//! SIGTERM under load: the worker process stops pulling, finishes its
//! in-flight jobs within the grace period and exits 0; what it had not
//! started runs elsewhere. Nothing is lost and nothing runs twice.

use std::time::{Duration, Instant};

use gad_e2e::service_process::{Config, WorkerProcess};
use gad_e2e::users::ADMIN;

use super::load::{self, Submitter};
use crate::custom_app::CustomApp;

const JOBS: usize = 400;
const GRACE: Duration = Duration::from_secs(2);

fn config(app: &CustomApp) -> Config {
    let mut c = Config::workers(&app.iso);
    c.set("workers", "shutdown_grace", &format!("\"{}ms\"", GRACE.as_millis()));
    c.set("workers.default_group", "concurrency", "8");
    // Messages pulled but never started come back after the ack wait.
    c.set("workers.default_group", "ack_wait", "\"3s\"");
    c.set("workers.default_group", "deadline", "\"2s\"");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_jobs_and_exits_zero() -> anyhow::Result<()> {
    let mut app = CustomApp::new(|_| {}).await?;
    app.start_ingress().await?;
    let admin = app.user(ADMIN).await?;
    let mut first = WorkerProcess::start(config(&app), Duration::from_secs(30)).await?;
    let submit = Submitter {
        client: app.client.clone(),
        http: app.http.clone().unwrap_or_default(),
        token: admin.token.clone(),
    };
    let prefix = load::prefix('S');
    let ids = submit.tasks(&prefix, admin.id, JOBS).await?;
    load::wait_succeeded(&app.db, &ids, 50, Duration::from_secs(30)).await?;

    first.signal("TERM").await?;
    let signalled = Instant::now();
    let status = first.wait(GRACE + Duration::from_secs(5)).await?;
    let took = signalled.elapsed();
    assert!(status.success(), "exit code 0: {status}");
    assert!(
        took <= GRACE + Duration::from_secs(2),
        "drained within the grace period: {took:?}"
    );
    let left = JOBS as i64 - load::count_with(&app.db, &ids, "succeeded").await?;
    assert!(left > 0, "the signal came under load");
    assert_eq!(
        load::count_with(&app.db, &ids, "running").await?,
        0,
        "no job left running"
    );

    let second = WorkerProcess::start(config(&app), Duration::from_secs(30)).await?;
    let by_status = load::wait_terminal(&app.db, &ids, Duration::from_secs(40)).await?;
    assert_eq!(by_status.get("succeeded").copied(), Some(JOBS as i64), "{by_status:?}");
    let (tareas, per_job) = load::task_effects(&app.db, &prefix, &ids).await?;
    assert_eq!(tareas, JOBS as i64, "one tarea per job");
    assert_eq!(
        per_job.get(&1).copied(),
        Some(JOBS as i64),
        "one creation per job: {per_job:?}"
    );

    drop(second);
    app.stop().await
}
