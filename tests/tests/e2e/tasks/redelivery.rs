//! A job delivered twice changes nothing twice: the handler run again on
//! the same envelope answers the first result and writes no second tarea,
//! historial, audit or event row. Both with the `jobs` row the worker keeps
//! (the job guard) and without it (`creado_por_job_id`).

use gad_e2e::{TestApp, spawn_app};
use gad_shared::envelope::{ENVELOPE_VERSION, JobEnvelope};
use gad_shared::redis_conn::Redis;
use gad_workers::jobs::{self, HandlerContext};
use serde_json::json;

use super::support::{at, codigo};

async fn context(app: &TestApp) -> anyhow::Result<HandlerContext> {
    let revocation = app.js.get_key_value(app.topology.revocation_bucket()).await?;
    Ok(HandlerContext {
        db: app.db.clone(),
        knn_db: app.db.clone(),
        redis: Redis::new(&app.isolation.redis),
        revocation,
    })
}

fn envelope(kind: &str, by: i64, payload: serde_json::Value) -> JobEnvelope {
    JobEnvelope {
        v: ENVELOPE_VERSION,
        job_id: uuid::Uuid::now_v7(),
        kind: kind.into(),
        submitted_by: Some(by),
        submitted_at: chrono::Utc::now(),
        request_id: Some("redelivery-test".into()),
        client: None,
        payload,
    }
}

/// The `jobs` row a worker upserts before running a job.
async fn job_row(app: &TestApp, job: &JobEnvelope) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO jobs (job_id, kind, status, attempts, submitted_by) VALUES ($1, $2, 'running', 1, $3)")
        .bind(job.job_id)
        .bind(&job.kind)
        .bind(job.submitted_by)
        .execute(&app.db)
        .await?;
    Ok(())
}

async fn count(app: &TestApp, sql: &'static str, id: i64) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(sql).bind(id).fetch_one(&app.db).await?)
}

/// tareas with the codigo, their historial rows, `task_created` audit rows and events.
async fn footprint(app: &TestApp, codigo: &str, id: i64) -> anyhow::Result<[i64; 4]> {
    let tareas: i64 = sqlx::query_scalar("SELECT count(*) FROM tareas WHERE codigo = $1")
        .bind(codigo)
        .fetch_one(&app.db)
        .await?;
    Ok([
        tareas,
        count(app, "SELECT count(*) FROM historial_estados WHERE tarea_id = $1", id).await?,
        count(app, "SELECT count(*) FROM audit_log WHERE action = 'task_created' AND resource_id = $1::text", id).await?,
        count(app, "SELECT count(*) FROM outbox_events WHERE event_type = 'task_created' AND (payload->'tarea'->>'id')::bigint = $1", id)
            .await?,
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_run_twice_makes_one_tarea() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let ctx = context(&app).await?;
    let sup = app.supervisor.id;
    for with_job_row in [true, false] {
        let code = codigo("R");
        let payload = json!({ "codigo": code, "titulo": "Entrega repetida", "tipo": "patrullaje",
                               "inicio_programado": at(30), "delegado_usuario_id": sup, "prioridad": 4 });
        let job = envelope("task.create", sup, payload);
        if with_job_row {
            job_row(&app, &job).await?;
        }
        let first = jobs::run(&ctx, &job).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let second = jobs::run(&ctx, &job)
            .await
            .map_err(|e| anyhow::anyhow!("second run: {e:?}"))?;
        assert_eq!(first.http_status, 201);
        assert_eq!(second.http_status, 201);
        let id = first.body["id"].as_i64().unwrap_or_default();
        assert_eq!(second.body["id"], id, "the second run answered another tarea");
        assert_eq!(
            footprint(&app, &code, id).await?,
            [1, 1, 1, 1],
            "with_job_row = {with_job_row}"
        );
        let alerts: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM outbox_events WHERE event_type = 'alert' AND (payload->>'tarea_id')::bigint = $1",
        )
        .bind(id)
        .fetch_one(&app.db)
        .await?;
        assert_eq!(alerts, 1, "one urgent_task alert");
    }
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transition_run_twice_applies_once() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let ctx = context(&app).await?;
    let sup = app.supervisor.id;
    let create = envelope(
        "task.create",
        sup,
        json!({ "codigo": codigo("R"), "titulo": "Entrega repetida", "tipo": "patrullaje",
                "inicio_programado": at(30), "delegado_usuario_id": sup }),
    );
    let id = jobs::run(&ctx, &create)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?
        .body["id"]
        .as_i64()
        .unwrap_or_default();
    let start = envelope("task.transition", sup, json!({ "tarea_id": id, "accion": "start" }));
    job_row(&app, &start).await?;
    let first = jobs::run(&ctx, &start).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    // Without the guard this would be 409 invalid_transition (already en_curso).
    let second = jobs::run(&ctx, &start)
        .await
        .map_err(|e| anyhow::anyhow!("second run: {e:?}"))?;
    assert_eq!(first, second);
    assert_eq!(
        count(&app, "SELECT count(*) FROM historial_estados WHERE tarea_id = $1", id).await?,
        2
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM audit_log WHERE action = 'task_status_changed' AND resource_id = $1::text",
            id
        )
        .await?,
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM outbox_events WHERE event_type = 'task_status_changed' AND (payload->>'tarea_id')::bigint = $1",
            id
        )
        .await?,
        1
    );
    app.stop().await
}
