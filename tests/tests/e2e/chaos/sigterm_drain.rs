//! SIGTERM under load: the worker process stops pulling, gives its in-flight
//! jobs the grace period, hands back at once what it did not finish (pulled
//! but unstarted, or stopped at the end of the grace) and exits 0; another
//! process runs those without waiting for their ack wait. Nothing is lost and
//! nothing runs twice.

use std::time::{Duration, Instant};

use gad_e2e::service_process::{Config, WorkerProcess};
use gad_e2e::users::ADMIN;
use gad_shared::queue::Backend;
use uuid::Uuid;

use super::load::{self, Submitter};
use crate::custom_app::CustomApp;

const JOBS: usize = 400;
const GRACE: Duration = Duration::from_secs(2);
/// The second process must finish everything well within this: a job that
/// came back only after its ack wait fails the test.
const ACK_WAIT: Duration = Duration::from_secs(60);

fn config(app: &CustomApp, deadline: Duration) -> Config {
    let mut c = Config::workers(&app.iso);
    c.set("workers", "shutdown_grace", &format!("\"{}ms\"", GRACE.as_millis()));
    c.set("workers.default_group", "concurrency", "8");
    c.set(
        "workers.default_group",
        "ack_wait",
        &format!("\"{}s\"", ACK_WAIT.as_secs()),
    );
    c.set(
        "workers.default_group",
        "deadline",
        &format!("\"{}ms\"", deadline.as_millis()),
    );
    c
}

struct Loaded {
    app: CustomApp,
    first: WorkerProcess,
    prefix: String,
    ids: Vec<Uuid>,
    deadline: Duration,
}

/// A worker process busy with `JOBS` task creations, 50 of them done.
async fn loaded(deadline: Duration) -> anyhow::Result<Loaded> {
    loaded_on(Backend::Jetstream, deadline).await
}

async fn loaded_on(backend: Backend, deadline: Duration) -> anyhow::Result<Loaded> {
    let mut app = CustomApp::new(|iso| iso.queue.backend = backend).await?;
    app.start_ingress().await?;
    let admin = app.user(ADMIN).await?;
    let first = WorkerProcess::start(config(&app, deadline), Duration::from_secs(30)).await?;
    let submit = Submitter {
        client: app.client.clone(),
        http: app.http.clone().unwrap_or_default(),
        token: admin.token.clone(),
    };
    let prefix = load::prefix('S');
    let ids = submit.tasks(&prefix, admin.id, JOBS).await?;
    load::wait_succeeded(&app.db, &ids, 50, Duration::from_secs(30)).await?;
    Ok(Loaded {
        app,
        first,
        prefix,
        ids,
        deadline,
    })
}

/// Signals the first process and checks it exits 0 within the grace period
/// (plus `slack`) with work left over.
async fn terminate(l: &mut Loaded, slack: Duration) -> anyhow::Result<()> {
    l.first.signal("TERM").await?;
    let signalled = Instant::now();
    let status = l.first.wait(GRACE + Duration::from_secs(10)).await?;
    let took = signalled.elapsed();
    assert!(status.success(), "exit code 0: {status}");
    assert!(took <= GRACE + slack, "drained within the grace period: {took:?}");
    Ok(())
}

/// A second process finishes every job long before any ack wait ran out,
/// each exactly once.
async fn finish_elsewhere(l: Loaded) -> anyhow::Result<()> {
    let Loaded {
        app,
        prefix,
        ids,
        deadline,
        ..
    } = l;
    let left = JOBS as i64 - load::count_with(&app.db, &ids, "succeeded").await?;
    assert!(left > 0, "the signal came under load");
    let second = WorkerProcess::start(config(&app, deadline), Duration::from_secs(30)).await?;
    let by_status = load::wait_terminal(&app.db, &ids, ACK_WAIT / 2).await?;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_jobs_and_exits_zero() -> anyhow::Result<()> {
    drains_and_exits_zero(Backend::Jetstream).await
}

/// The same drain with the jobs on RabbitMQ: what the consumer was given
/// but did not start is requeued at once, not at the connection's close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_rabbitmq_sigterm_drains_in_flight_jobs_and_exits_zero() -> anyhow::Result<()> {
    drains_and_exits_zero(Backend::Rabbitmq).await
}

async fn drains_and_exits_zero(backend: Backend) -> anyhow::Result<()> {
    let mut l = loaded_on(backend, Duration::from_secs(2)).await?;
    terminate(&mut l, Duration::from_secs(2)).await?;
    assert_eq!(
        load::count_with(&l.app.db, &l.ids, "running").await?,
        0,
        "no job left running"
    );
    finish_elsewhere(l).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_unfinished_at_the_end_of_the_grace_are_handed_back_at_once() -> anyhow::Result<()> {
    // A deadline past the grace, and new tareas waiting on a lock: at the
    // signal the process holds jobs it cannot finish in time.
    let mut l = loaded(Duration::from_secs(20)).await?;
    let mut lock = l.app.db.begin().await?;
    sqlx::query("LOCK TABLE tareas IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    terminate(&mut l, Duration::from_secs(2)).await?;
    lock.rollback().await?;
    finish_elsewhere(l).await
}
