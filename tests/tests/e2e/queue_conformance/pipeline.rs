//! The workers on either broker.

use std::time::Duration;

use gad_e2e::users::{ADMIN, SUPERVISOR};
use gad_shared::envelope::{ENVELOPE_VERSION, JobEnvelope};
use gad_shared::job::{JobRecord, JobStatus, kind_spec};
use gad_shared::queue::Backend;
use gad_workers::job_store::{JobStore, Started};
use gad_workers::row_batch::RowBatcher;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{Harness, on_both};

/// A job published twice under one id (a client's retry after a lost
/// confirm, an importer run again) is applied once. JetStream drops the
/// copy at publish; RabbitMQ delivers both, together here, and the worker
/// drops the second.
async fn a_job_published_twice_is_applied_once(backend: Backend) -> anyhow::Result<()> {
    let mut h = Harness::new(backend, |_| {}).await?;
    let sup = h.app.user(SUPERVISOR).await?;
    let codigo = format!("DUP-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]).to_uppercase();
    let inicio = (chrono::Utc::now() + chrono::Duration::minutes(30)).to_rfc3339();
    let job = h.job(
        "task.create",
        json!({ "codigo": codigo, "titulo": "Publicada dos veces", "tipo": "patrullaje",
                "inicio_programado": inicio, "delegado_usuario_id": sup.id, "prioridad": 4 }),
        Some(sup.id),
    )?;
    assert!(!h.publish(&job).await?);
    let second = h.publish(&job).await?;
    if backend == Backend::Jetstream {
        assert!(second, "JetStream drops the copy inside its duplicate window");
    }
    h.start_workers(|s| s.workers.groups = vec!["tasks".into()]).await?;
    let (status, attempts) = h.terminal(job.record.job_id, Duration::from_secs(15)).await?;
    assert_eq!((status.as_str(), attempts), ("succeeded", 1));
    // The second copy, however late, must not turn the outcome around.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _) = h.terminal(job.record.job_id, Duration::from_secs(1)).await?;
    assert_eq!(status, "succeeded");
    let tareas: i64 = sqlx::query_scalar("SELECT count(*) FROM tareas WHERE codigo = $1")
        .bind(&codigo)
        .fetch_one(&h.app.db)
        .await?;
    let created: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log a JOIN tareas t ON a.resource_id = t.id::text
          WHERE a.action = 'task_created' AND t.codigo = $1",
    )
    .bind(&codigo)
    .fetch_one(&h.app.db)
    .await?;
    let result: Option<serde_json::Value> = sqlx::query_scalar("SELECT result FROM jobs WHERE job_id = $1")
        .bind(job.record.job_id)
        .fetch_one(&h.app.db)
        .await?;
    assert_eq!(
        (tareas, created),
        (1, 1),
        "tareas and task_created audit rows; result {result:?}"
    );
    h.stop().await
}
on_both!(a_job_published_twice_is_applied_once);

/// A job that fails transiently every time ends `dead` after exactly its
/// `max_attempts`, its record on the dead-letter stream; on RabbitMQ each
/// retry went through a TTL bucket and came back under its own subject.
/// Replayed by an operator once the database is fine, it runs to success
/// on a fresh attempt budget, through the same broker.
///
/// The failure: the test holds `efectivos` locked, so every KNN query waits
/// until its statement timeout.
async fn an_always_failing_job_is_dead_lettered_after_its_attempts(backend: Backend) -> anyhow::Result<()> {
    let mut h = Harness::new(backend, |iso| iso.postgres.knn_timeout = Duration::from_millis(100)).await?;
    h.start_workers(|s| {
        s.workers.groups = vec!["geo".into()];
        s.workers.backoff_base = Duration::from_millis(100);
        s.workers.backoff_cap = Duration::from_millis(400);
    })
    .await?;
    let max_attempts = kind_spec("geo.nearest").map(|k| k.max_attempts).unwrap_or(0);
    anyhow::ensure!(max_attempts >= 3, "geo.nearest retries");
    let mut lock = h.app.db.begin().await?;
    sqlx::query("LOCK TABLE efectivos IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await?;
    let job = h.job("geo.nearest", json!({ "lat": -34.6, "lng": -58.4, "k": 3 }), None)?;
    h.publish(&job).await?;
    let (status, attempts) = h.terminal(job.record.job_id, Duration::from_secs(30)).await?;
    lock.rollback().await?;
    assert_eq!((status.as_str(), attempts), ("dead", max_attempts as i32));
    let mut dlq = h.js.get_stream(h.topology.dlq_stream()).await?;
    let records = dlq.info().await?.state.messages;
    assert_eq!(records, 1, "one dead-letter record");
    let last = dlq.info().await?.state.last_sequence;
    let record = dlq.get_raw_message(last).await?;
    assert_eq!(
        record
            .headers
            .get(gad_shared::dlq::header::JOB_ID)
            .map(|v| v.as_str().to_string()),
        Some(job.record.job_id.to_string())
    );

    h.app.start_ingress().await?;
    let admin = h.app.user(ADMIN).await?;
    let path = format!("/api/v1/admin/dlq/{}/replay", job.record.job_id);
    let r = h.app.send(Method::POST, &path, &admin.token).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let (status, attempts) = h
        .terminal_after_replay(job.record.job_id, Duration::from_secs(15))
        .await?;
    assert_eq!((status.as_str(), attempts), ("succeeded", 1));
    h.stop().await
}
on_both!(an_always_failing_job_is_dead_lettered_after_its_attempts);

/// RabbitMQ's backstop for a job whose worker crashes on every delivery
/// (JetStream's `max_deliver`, tested in `max_deliveries`): past the quorum
/// queue's delivery limit the copy is dead-lettered by the broker, and the
/// workers move it to the dead-letter stream and mark the job `dead`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_rabbitmq_a_job_crashing_every_worker_ends_dead() -> anyhow::Result<()> {
    let mut h = Harness::new(Backend::Rabbitmq, |iso| iso.queue.rabbitmq.delivery_limit = 2).await?;
    // No lanes: only the dead-letter mover runs.
    h.start_workers(|s| s.workers.groups = vec![]).await?;
    let job = h.job("import.noop", json!({}), None)?;
    h.publish(&job).await?;
    let mut crashes = 0;
    loop {
        let mut consumer = h.consumer("import").await?;
        match consumer.next(Duration::from_secs(2)).await {
            Ok(_) => {
                crashes += 1;
                consumer.crash().await;
            }
            Err(_) => {
                consumer.crash().await;
                break;
            }
        }
        anyhow::ensure!(crashes <= 5, "still delivered after {crashes} crashes");
    }
    assert!(crashes >= 2, "dead-lettered after {crashes} deliveries");
    let (status, attempts) = h.terminal(job.record.job_id, Duration::from_secs(10)).await?;
    assert_eq!(status, "dead");
    assert_eq!(attempts, 2, "the attempts the broker counted");
    let records =
        h.js.get_stream(h.topology.dlq_stream())
            .await?
            .info()
            .await?
            .state
            .messages;
    assert_eq!(records, 1);
    h.stop().await
}

/// The rule behind "applied once" on RabbitMQ, checked on the store itself
/// (the pipeline case above can pass on the handlers' own idempotency): a
/// copy holding an attempt the `jobs` row already has is another copy's,
/// the next attempt (a crash, a retry, a hand-back) runs, and a finished job
/// is finished for every copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_row_admits_one_live_delivery_per_attempt() -> anyhow::Result<()> {
    let app = gad_e2e::spawn_app().await?;
    let store = JobStore {
        db: app.db.clone(),
        status: app.js.get_key_value(app.topology.job_status_bucket()).await?,
        js: app.js.clone(),
        topology: app.topology.clone(),
        rows: RowBatcher::spawn(app.db.clone(), 4, 4),
    };
    let job = JobEnvelope {
        v: ENVELOPE_VERSION,
        job_id: uuid::Uuid::now_v7(),
        kind: "import.noop".into(),
        submitted_by: None,
        submitted_at: chrono::Utc::now(),
        request_id: None,
        client: None,
        payload: json!({}),
    };
    let started = |s: &Started| match s {
        Started::Running(_) => "running",
        Started::AlreadyFinished(_) => "finished",
        Started::Gone => "gone",
        Started::Claimed => "claimed",
    };
    let Started::Running(first) = store.start(&job, 3, 1).await? else {
        anyhow::bail!("the first delivery must run");
    };
    assert_eq!(
        started(&store.start(&job, 3, 1).await?),
        "claimed",
        "a second copy of attempt 1"
    );
    let Started::Running(second) = store.start(&job, 3, 2).await? else {
        anyhow::bail!("attempt 2 must run");
    };
    assert_eq!(second.started_at, first.started_at, "the job's start stays its first");
    assert_eq!(
        started(&store.start(&job, 3, 2).await?),
        "claimed",
        "a second copy of attempt 2"
    );
    store
        .finish(&JobRecord {
            status: JobStatus::Succeeded,
            ..second
        })
        .await?;
    assert_eq!(started(&store.start(&job, 3, 3).await?), "finished");
    app.stop().await
}
