//! Two worker processes share ~2,000 jobs; one is killed with SIGKILL
//! mid-run. Its unacknowledged jobs are redelivered to the other after the
//! ack wait, and every job succeeds exactly once: one `jobs` row each, one
//! tarea each, one creation history row each.

use std::time::Duration;

use gad_e2e::service_process::{Config, WorkerProcess};
use gad_e2e::users::ADMIN;

use super::load::{self, Submitter};
use crate::custom_app::CustomApp;

const JOBS: usize = 2000;

fn config(app: &CustomApp) -> Config {
    let mut c = Config::workers(&app.iso);
    c.set("workers.default_group", "concurrency", "8");
    c.set("workers.default_group", "max_ack_pending", "256");
    c.set("workers.default_group", "ack_wait", "\"3s\"");
    c.set("workers.default_group", "deadline", "\"2s\"");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_of_one_worker_loses_nothing_and_runs_nothing_twice() -> anyhow::Result<()> {
    let mut app = CustomApp::new(|_| {}).await?;
    app.start_ingress().await?;
    let admin = app.user(ADMIN).await?;
    let (victim, survivor) = tokio::try_join!(
        WorkerProcess::start(config(&app), Duration::from_secs(30)),
        WorkerProcess::start(config(&app), Duration::from_secs(30)),
    )?;
    let submit = Submitter {
        client: app.client.clone(),
        http: app.http.clone().unwrap_or_default(),
        token: admin.token.clone(),
    };
    let prefix = load::prefix('K');
    let ids = submit.tasks(&prefix, admin.id, JOBS).await?;
    load::wait_succeeded(&app.db, &ids, (JOBS / 4) as i64, Duration::from_secs(40)).await?;

    victim.signal("KILL").await?;
    let at_kill = load::count_with(&app.db, &ids, "succeeded").await?;
    assert!(at_kill < JOBS as i64, "killed mid-run");

    let by_status = load::wait_terminal(&app.db, &ids, Duration::from_secs(45)).await?;
    assert_eq!(by_status.get("succeeded").copied(), Some(JOBS as i64), "{by_status:?}");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE job_id = ANY($1)")
        .bind(&ids)
        .fetch_one(&app.db)
        .await?;
    assert_eq!(rows, JOBS as i64, "one jobs row per job");
    let (tareas, per_job) = load::task_effects(&app.db, &prefix, &ids).await?;
    assert_eq!(tareas, JOBS as i64, "one tarea per job");
    assert_eq!(
        per_job.get(&1).copied(),
        Some(JOBS as i64),
        "one creation per job: {per_job:?}"
    );

    drop((victim, survivor));
    app.stop().await
}
