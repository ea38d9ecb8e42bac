//! The jobs list and cancellation (domain.md §6.3, architecture.md
//! "Cancelling a queued job"): filters, newest first, nivel 1 sees only its
//! own jobs; a queued job is cancelled and later acknowledged by a worker
//! without running; running and finished jobs are 409.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::kv;
use chrono::{DateTime, Utc};
use gad_e2e::{ApiResponse, TestApp, spawn_app};
use gad_shared::envelope::{self, CONTENT_TYPE_MSGPACK, ENVELOPE_VERSION, JobEnvelope, headers};
use gad_shared::job::{JobRecord, JobStatus, kind_spec};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::{Body, send};
use crate::error_shape::assert_error;

const WITHIN: Duration = Duration::from_secs(15);
const NEAREST: &str = "/api/v1/geo/nearest?lat=-34.6037&lng=-58.3816&k=3";

const JOB_KEYS: [&str; 12] = [
    "attempts",
    "created_at",
    "error",
    "finished_at",
    "job_id",
    "kind",
    "max_attempts",
    "payload_summary",
    "result",
    "started_at",
    "status",
    "submitted_by",
];

struct Row {
    id: Uuid,
    kind: &'static str,
    status: &'static str,
    by: Option<i64>,
    minutes_ago: i64,
}

async fn insert_job(app: &TestApp, row: &Row) -> anyhow::Result<()> {
    let (result, error) = match row.status {
        "succeeded" => (Some(json!({"http_status": 200, "body": {"ok": true}})), None),
        "queued" | "running" => (None, None),
        _ => (
            None,
            Some(json!({"http_status": 404, "error": "not_found", "message": "gone"})),
        ),
    };
    sqlx::query(
        "INSERT INTO jobs (job_id, kind, status, attempts, max_attempts, submitted_by, payload_summary, result, error,
                           created_at, started_at, finished_at)
         VALUES ($1, $2, $3::job_status, 1, 5, $4, '{}', $5, $6, now() - $7 * interval '1 minute',
                 now() - $7 * interval '1 minute', now() - $7 * interval '1 minute')",
    )
    .bind(row.id)
    .bind(row.kind)
    .bind(row.status)
    .bind(row.by)
    .bind(result)
    .bind(error)
    .bind(row.minutes_ago as f64)
    .execute(&app.db)
    .await?;
    Ok(())
}

fn ids(r: &ApiResponse) -> Vec<String> {
    r.body
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|j| j["job_id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn total(r: &ApiResponse) -> Option<i64> {
    r.header("x-total-count").and_then(|t| t.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_filters_pages_and_keeps_nivel_1_to_its_own_jobs() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let (e, s, a) = (app.efectivo.id, app.supervisor.id, app.admin.id);
    let rows = [
        ("system", "import.tareas", "succeeded", None, 70),
        ("e1", "task.create", "succeeded", Some(e), 60),
        ("e2", "efectivo.location", "failed", Some(e), 50),
        ("s1", "geo.nearest", "succeeded", Some(s), 40),
        ("s2", "geo.map_view", "failed", Some(s), 30),
        ("s3", "task.create", "dead", Some(s), 20),
        ("a1", "geo.nearest", "cancelled", Some(a), 10),
    ];
    let mut named = std::collections::HashMap::new();
    for (name, kind, status, by, minutes_ago) in rows {
        let row = Row {
            id: Uuid::now_v7(),
            kind,
            status,
            by,
            minutes_ago,
        };
        insert_job(&app, &row).await?;
        named.insert(name, row.id.to_string());
    }
    let expect = |names: &[&str]| names.iter().map(|n| named[n].clone()).collect::<Vec<_>>();
    let list = |query: &str, token: &str| {
        let path = format!("/api/v1/jobs{query}");
        let token = token.to_string();
        let app = &app;
        async move { app.get(&path, Some(&token)).await }
    };
    let (sup, own) = (app.supervisor.token.clone(), app.efectivo.token.clone());

    let r = list("", &sup).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        ids(&r),
        expect(&["a1", "s3", "s2", "s1", "e2", "e1", "system"]),
        "newest first"
    );
    assert_eq!(total(&r), Some(7));
    let mut keys: Vec<&str> = r.body[0]
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort();
    assert_eq!(keys, JOB_KEYS);
    assert_eq!(r.body[0]["status"], "cancelled");
    assert_eq!(r.body[5]["result"], json!({"http_status": 200, "body": {"ok": true}}));

    for (query, token, wanted, count) in [
        ("", &own, vec!["e2", "e1"], 2),
        (&format!("?submitted_by={s}") as &str, &own, vec![], 0),
        ("?status=failed", &own, vec!["e2"], 1),
        ("?status=failed", &sup, vec!["s2", "e2"], 2),
        ("?kind=task.create", &sup, vec!["s3", "e1"], 2),
        (&format!("?submitted_by={s}"), &sup, vec!["s3", "s2", "s1"], 3),
        ("?status=succeeded&kind=geo.nearest", &sup, vec!["s1"], 1),
        ("?limit=2", &sup, vec!["a1", "s3"], 7),
        ("?skip=6", &sup, vec!["system"], 7),
        ("?skip=7", &sup, vec![], 7),
        ("/?limit=1&skip=1", &sup, vec!["s3"], 7),
    ] {
        let r = list(query, token).await?;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text);
        assert_eq!(ids(&r), expect(&wanted), "{query}");
        assert_eq!(total(&r), Some(count), "{query}");
    }

    let r = list("?status=bogus&limit=0&skip=-1&submitted_by=x", &sup).await?;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let mut fields: Vec<&str> = r.body["details"]["fields"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f["field"].as_str()).collect())
        .unwrap_or_default();
    fields.sort();
    assert_eq!(fields, ["limit", "skip", "status", "submitted_by"]);
    let r = list("?limit=501", &sup).await?;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r = app.get("/api/v1/jobs", None).await?;
    assert_error(&r, StatusCode::UNAUTHORIZED, "not_authenticated");

    // A job run through the pipeline is listed with its outcome.
    let r = app.get_with(NEAREST, Some(&sup), &[("Prefer", "wait=10")]).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let job = r.header("x-job-id").unwrap_or_default().to_string();
    let r = list("?kind=geo.nearest&status=succeeded", &sup).await?;
    assert_eq!(ids(&r), [job, named["s1"].clone()]);
    app.stop().await
}

async fn status_bucket(app: &TestApp) -> anyhow::Result<kv::Store> {
    Ok(app.js.get_key_value(app.topology.job_status_bucket()).await?)
}

/// What ingress records when it accepts a job, written directly so the job
/// stays queued until the test publishes it.
async fn queued_job(app: &TestApp, status: JobStatus, by: i64) -> anyhow::Result<JobRecord> {
    let record = JobRecord {
        job_id: Uuid::now_v7(),
        kind: "geo.nearest".into(),
        status,
        attempts: 0,
        max_attempts: 5,
        submitted_by: Some(by),
        payload_summary: json!({"lat": -34.6037, "lng": -58.3816, "k": 3}),
        result: None,
        error: None,
        created_at: Utc::now(),
        started_at: None,
        finished_at: None,
    };
    status_bucket(app)
        .await?
        .create(record.job_id.to_string(), envelope::encode(&record)?)
        .await?;
    Ok(record)
}

/// Publishes `record`'s job as ingress would have.
async fn publish_job(app: &TestApp, record: &JobRecord) -> anyhow::Result<()> {
    let spec = kind_spec(&record.kind).ok_or_else(|| anyhow::anyhow!("unknown kind"))?;
    let job = JobEnvelope {
        v: ENVELOPE_VERSION,
        job_id: record.job_id,
        kind: record.kind.clone(),
        submitted_by: record.submitted_by,
        submitted_at: record.created_at,
        request_id: None,
        client: None,
        payload: record.payload_summary.clone(),
    };
    let mut hdrs = HeaderMap::new();
    hdrs.insert(headers::CONTENT_TYPE, CONTENT_TYPE_MSGPACK);
    hdrs.insert(headers::MSG_ID, record.job_id.to_string().as_str());
    app.js
        .publish_with_headers(app.topology.job_subject(spec), hdrs, envelope::encode(&job)?)
        .await?
        .await?;
    Ok(())
}

async fn cancel(app: &TestApp, job_id: &str, token: &str) -> anyhow::Result<ApiResponse> {
    send(
        app,
        Method::POST,
        &format!("/api/v1/jobs/{job_id}/cancel"),
        Some(token),
        Body::None,
        &[],
    )
    .await
}

#[derive(Debug, sqlx::FromRow)]
struct Stored {
    status: JobStatus,
    result: Option<Value>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

async fn stored(app: &TestApp, job_id: Uuid) -> anyhow::Result<Option<Stored>> {
    Ok(
        sqlx::query_as("SELECT status, result, started_at, finished_at FROM jobs WHERE job_id = $1")
            .bind(job_id)
            .fetch_optional(&app.db)
            .await?,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_job_is_cancelled_and_later_acknowledged_without_running() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let record = queued_job(&app, JobStatus::Queued, app.supervisor.id).await?;
    let id = record.job_id.to_string();

    // Someone else's job is not revealed to a nivel 1 caller.
    let r = cancel(&app, &id, &app.efectivo.token).await?;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");

    let r = cancel(&app, &id, &app.supervisor.token).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["job_id"], id.as_str());
    assert_eq!(r.body["status"], "cancelled");
    assert_eq!(r.body["kind"], "geo.nearest");
    assert!(r.body["finished_at"].is_string(), "{}", r.text);
    assert_eq!(r.body["result"], Value::Null);
    let polled = app
        .get(&format!("/api/v1/jobs/{id}"), Some(&app.supervisor.token))
        .await?;
    assert_eq!(polled.body["status"], "cancelled", "{}", polled.text);
    let again = cancel(&app, &id, &app.supervisor.token).await?;
    assert_error(&again, StatusCode::CONFLICT, "job_finished");

    let audited: Vec<(Option<i64>, String, Option<String>)> = sqlx::query_as(
        "SELECT actor_usuario_id, resource_type, resource_id FROM audit_log WHERE action = 'job_cancelled'",
    )
    .fetch_all(&app.db)
    .await?;
    assert_eq!(
        audited,
        [(Some(app.supervisor.id), "job".to_string(), Some(id.clone()))]
    );
    let announced: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE job_id = $1 AND event_type = 'job_updated'")
            .bind(record.job_id)
            .fetch_one(&app.db)
            .await?;
    assert_eq!(announced, 1);

    // The message arrives late: the worker acknowledges it and runs nothing.
    publish_job(&app, &record).await?;
    let deadline = tokio::time::Instant::now() + WITHIN;
    while app.jobs_stream_messages().await? != Some(0) {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the job was never acknowledged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let row = stored(&app, record.job_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no jobs row"))?;
    assert_eq!(row.status, JobStatus::Cancelled);
    assert_eq!(row.result, None, "no result: the handler never ran");
    assert_eq!(row.started_at, None, "never started");
    assert!(row.finished_at.is_some());
    app.stop().await
}

/// The worker's own check: a delivery whose fast status says `cancelled`
/// is recorded as cancelled and acknowledged, even with no row written yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_never_runs_a_job_whose_status_is_cancelled() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let record = queued_job(&app, JobStatus::Cancelled, app.supervisor.id).await?;
    publish_job(&app, &record).await?;
    let deadline = tokio::time::Instant::now() + WITHIN;
    let row = loop {
        if app.jobs_stream_messages().await? == Some(0)
            && let Some(row) = stored(&app, record.job_id).await?
        {
            break row;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the job was never acknowledged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(row.status, JobStatus::Cancelled);
    assert_eq!(row.result, None, "the handler never ran");
    assert_eq!(row.started_at, None);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_and_finished_jobs_are_409_and_unknown_ones_404() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let sup = app.supervisor.token.clone();

    let running = queued_job(&app, JobStatus::Running, app.supervisor.id).await?;
    let r = cancel(&app, &running.job_id.to_string(), &sup).await?;
    assert_error(&r, StatusCode::CONFLICT, "job_running");

    let r = app.get_with(NEAREST, Some(&sup), &[("Prefer", "wait=10")]).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let finished = r.header("x-job-id").unwrap_or_default().to_string();
    let r = cancel(&app, &finished, &sup).await?;
    assert_error(&r, StatusCode::CONFLICT, "job_finished");
    let job = app.wait_for_job(&finished, &sup, WITHIN).await?;
    assert_eq!(job["status"], "succeeded", "unchanged: {job}");

    // Known only to the durable row (its fast status expired).
    let old = Row {
        id: Uuid::now_v7(),
        kind: "task.create",
        status: "failed",
        by: Some(app.efectivo.id),
        minutes_ago: 3,
    };
    insert_job(&app, &old).await?;
    let r = cancel(&app, &old.id.to_string(), &app.efectivo.token).await?;
    assert_error(&r, StatusCode::CONFLICT, "job_finished");

    for unknown in [Uuid::now_v7().to_string(), "not-a-job".to_string()] {
        let r = cancel(&app, &unknown, &sup).await?;
        assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    }
    app.stop().await
}

/// Cancelling right after submitting races the worker: either the cancel
/// wins (the job never runs) or it is refused (the job runs to the end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_racing_the_worker_answers_what_actually_happened() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let sup = app.supervisor.token.clone();
    for _ in 0..10 {
        let r = app
            .get_with(NEAREST, Some(&sup), &[("Prefer", "respond-async")])
            .await?;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        let id = r.body["job_id"].as_str().unwrap_or_default().to_string();
        let r = cancel(&app, &id, &sup).await?;
        let job = app.wait_for_job(&id, &sup, WITHIN).await?;
        match r.status {
            StatusCode::OK => {
                assert_eq!(job["status"], "cancelled", "{job}");
                assert_eq!(job["result"], Value::Null, "{job}");
            }
            StatusCode::CONFLICT => {
                assert!(
                    r.body["error"] == "job_running" || r.body["error"] == "job_finished",
                    "{}",
                    r.text
                );
                assert_eq!(job["status"], "succeeded", "{job}");
            }
            other => panic!("unexpected {other}: {}", r.text),
        }
        // The row agrees with the status clients see.
        let row = stored(&app, Uuid::parse_str(&id)?).await?;
        let deadline = tokio::time::Instant::now() + WITHIN;
        let mut row = row;
        while row.as_ref().map(|r| r.status.as_str()) != job["status"].as_str() {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "row {row:?} vs {job}");
            tokio::time::sleep(Duration::from_millis(20)).await;
            row = stored(&app, Uuid::parse_str(&id)?).await?;
        }
    }
    app.stop().await
}
