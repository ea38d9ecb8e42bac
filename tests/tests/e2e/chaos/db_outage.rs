//! PostgreSQL unavailable for 10 s mid-run (a proxy the test controls cuts
//! and refuses the workers' connections) → the breaker opens, nothing is
//! dead-lettered, and every job completes once it is back.

use std::time::Duration;

use gad_e2e::service_process::{Config, WorkerProcess};
use gad_e2e::tcp_proxy::TcpProxy;
use gad_e2e::users::ADMIN;
use gad_shared::topology::Topology;

use super::load::{self, Submitter};
use crate::custom_app::CustomApp;

const OUTAGE: Duration = Duration::from_secs(10);
const BREAKER: &str = "gad_breaker_state{dependency=\"postgres\"}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_opens_the_breaker_and_loses_nothing() -> anyhow::Result<()> {
    let mut app = CustomApp::new(|_| {}).await?;
    app.start_ingress().await?;
    let admin = app.user(ADMIN).await?;
    let (proxy, proxied) = TcpProxy::in_front_of(&app.iso.postgres.url, 5432).await?;

    let mut config = Config::workers(&app.iso);
    config.set("postgres", "url", &format!("{proxied:?}"));
    config.set("postgres", "acquire_timeout", "\"500ms\"");
    config.set("postgres", "connect_timeout", "\"500ms\"");
    config.set("workers.breaker", "failure_threshold", "3");
    config.set("workers.breaker", "cooldown", "\"300ms\"");
    config.set("workers.breaker", "probe_timeout", "\"300ms\"");
    let worker = WorkerProcess::start(config, Duration::from_secs(30)).await?;
    assert_eq!(worker.metric(BREAKER).await?, Some(0.0), "closed at start");

    let submit = Submitter {
        client: app.client.clone(),
        http: app.http.clone().unwrap_or_default(),
        token: admin.token.clone(),
    };
    let prefix = load::prefix('P');
    let mut tasks = submit.tasks(&format!("{prefix}A"), admin.id, 100).await?;
    let mut ids = submit.nearests(50).await?;

    proxy.set_down(true);
    let down_since = tokio::time::Instant::now();
    // Accepting needs only NATS: these queue up while the database is away.
    tasks.extend(submit.tasks(&format!("{prefix}B"), admin.id, 100).await?);
    ids.extend(submit.nearests(50).await?);
    ids.extend(tasks.iter().copied());
    let mut opened = false;
    while down_since.elapsed() < OUTAGE {
        opened |= worker.metric(BREAKER).await? != Some(0.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(opened, "the breaker opened during the outage");
    let during = load::statuses(&app.db, &ids).await?;
    assert_eq!(during.get("dead"), None, "nothing dead during the outage: {during:?}");
    proxy.set_down(false);

    let by_status = load::wait_terminal(&app.db, &ids, Duration::from_secs(40)).await?;
    assert_eq!(
        by_status.get("succeeded").copied(),
        Some(ids.len() as i64),
        "{by_status:?}"
    );
    let (_, js) = gad_shared::topology::connect(&app.iso.nats).await?;
    let dlq = load::dlq_messages(&js, Topology::new(&app.iso.nats).dlq_stream()).await?;
    assert_eq!(dlq, 0, "nothing dead-lettered");
    let (tareas, per_job) = load::task_effects(&app.db, &prefix, &tasks).await?;
    assert_eq!(
        per_job.get(&1).copied(),
        Some(tasks.len() as i64),
        "one creation per job: {per_job:?}"
    );
    assert_eq!(tareas, tasks.len() as i64);
    assert_eq!(worker.metric(BREAKER).await?, Some(0.0), "closed again");

    drop(worker);
    proxy.stop().await;
    app.stop().await
}
