//! Operator controls of the dead-letter queue (domain.md §6.3): the list
//! reads `GAD_DLQ` (undecodable messages included), replay requeues a dead
//! job under a new message id with a fresh attempt budget, discard cancels
//! it; both are audited and nivel 3 only.

use std::time::Duration;

use async_nats::HeaderMap;
use chrono::Utc;
use gad_e2e::{ApiResponse, TestApp, spawn_app};
use gad_shared::dlq::header;
use gad_shared::envelope::{self, CONTENT_TYPE_MSGPACK, ENVELOPE_VERSION, JobEnvelope, headers};
use gad_shared::job::{JobError, JobRecord, JobStatus, kind_spec};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::{Body, send};
use crate::error_shape::assert_error;

const WITHIN: Duration = Duration::from_secs(15);

/// A `geo.nearest` job as a worker leaves it when its attempts ran out: the
/// `jobs` row and the status `dead`, and its record on `GAD_DLQ`.
pub async fn dead_job(app: &TestApp, by: i64) -> anyhow::Result<Uuid> {
    // Built from JSON, as an importer would: fields added later stay optional.
    let job: JobEnvelope = serde_json::from_value(json!({
        "v": ENVELOPE_VERSION,
        "job_id": Uuid::now_v7(),
        "kind": "geo.nearest",
        "submitted_by": by,
        "submitted_at": Utc::now(),
        "payload": {"lat": -34.6037, "lng": -58.3816, "k": 3},
    }))?;
    let error = JobError {
        http_status: 503,
        error: "dependency_unavailable".into(),
        message: "postgres is unavailable".into(),
        details: None,
    };
    let record = JobRecord {
        job_id: job.job_id,
        kind: job.kind.clone(),
        status: JobStatus::Dead,
        attempts: 5,
        max_attempts: 5,
        submitted_by: Some(by),
        payload_summary: job.payload.clone(),
        result: None,
        error: Some(error.clone()),
        created_at: job.submitted_at,
        started_at: Some(job.submitted_at),
        finished_at: Some(Utc::now()),
    };
    sqlx::query(
        "INSERT INTO jobs (job_id, kind, status, attempts, max_attempts, submitted_by, payload_summary, error,
                           created_at, started_at, finished_at)
         VALUES ($1, $2, 'dead', 5, 5, $3, $4, $5, $6, $6, now())",
    )
    .bind(job.job_id)
    .bind(&job.kind)
    .bind(by)
    .bind(&job.payload)
    .bind(json!(error))
    .bind(job.submitted_at)
    .execute(&app.db)
    .await?;
    app.js
        .get_key_value(app.topology.job_status_bucket())
        .await?
        .put(job.job_id.to_string(), envelope::encode(&record)?)
        .await?;
    let spec = kind_spec(&job.kind).ok_or_else(|| anyhow::anyhow!("unknown kind"))?;
    let mut hdrs = HeaderMap::new();
    hdrs.insert(headers::CONTENT_TYPE, CONTENT_TYPE_MSGPACK);
    hdrs.insert(header::JOB_ID, job.job_id.to_string().as_str());
    hdrs.insert(header::KIND, job.kind.as_str());
    hdrs.insert(header::ATTEMPTS, "5");
    hdrs.insert(header::ERROR, serde_json::to_string(&error)?.as_str());
    hdrs.insert(header::ORIGINAL_SUBJECT, app.topology.job_subject(spec).as_str());
    app.js
        .publish_with_headers(app.topology.dlq_subject(spec), hdrs, envelope::encode(&job)?)
        .await?
        .await?;
    Ok(job.job_id)
}

async fn post(app: &TestApp, path: &str, token: &str) -> anyhow::Result<ApiResponse> {
    send(app, Method::POST, path, Some(token), Body::None, &[]).await
}

fn total(r: &ApiResponse) -> Option<i64> {
    r.header("x-total-count").and_then(|t| t.parse().ok())
}

/// Waits until the list holds `n` records.
async fn listed(app: &TestApp, query: &str, n: usize) -> anyhow::Result<ApiResponse> {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let r = app
            .get(&format!("/api/v1/admin/dlq{query}"), Some(&app.admin.token))
            .await?;
        anyhow::ensure!(r.status == StatusCode::OK, "{}", r.text);
        if r.body.as_array().map(Vec::len) == Some(n) {
            return Ok(r);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "list never held {n}: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn audited(app: &TestApp, action: &str) -> anyhow::Result<Vec<(Option<i64>, String, Option<Value>)>> {
    Ok(
        sqlx::query_as("SELECT actor_usuario_id, resource_id, after FROM audit_log WHERE action = $1 ORDER BY id")
            .bind(action)
            .fetch_all(&app.db)
            .await?,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_job_is_listed_replayed_once_and_runs_again() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let admin = app.admin.token.clone();
    let id = dead_job(&app, app.supervisor.id).await?;

    let r = app.get("/api/v1/admin/dlq", Some(&app.supervisor.token)).await?;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = post(&app, &format!("/api/v1/admin/dlq/{id}/replay"), &app.supervisor.token).await?;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");

    let r = listed(&app, "", 1).await?;
    assert_eq!(total(&r), Some(1));
    let item = &r.body[0];
    assert_eq!(item["job_id"], id.to_string());
    assert_eq!(item["status"], "dead");
    assert_eq!(item["kind"], "geo.nearest");
    assert_eq!(item["error"]["error"], "dependency_unavailable");
    assert_eq!(item["dlq"]["undecodable"], false);
    let r = listed(&app, "?kind=geo.nearest", 1).await?;
    assert_eq!(r.body[0]["job_id"], id.to_string());
    listed(&app, "?kind=task.create", 0).await?;

    let r = post(&app, &format!("/api/v1/admin/dlq/{id}/replay"), &admin).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["job_id"], id.to_string());
    assert_eq!(r.body["status"], "queued");
    assert_eq!(r.body["attempts"], 0, "a fresh attempt budget");
    assert_eq!(r.body["error"], Value::Null);

    let job = app.wait_for_job(&id.to_string(), &admin, WITHIN).await?;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 1, "{job}");
    assert!(job["result"]["body"]["items"].is_array(), "{job}");
    listed(&app, "", 0).await?;

    // Not dead any more: a second replay and a discard are refused.
    let r = post(&app, &format!("/api/v1/admin/dlq/{id}/replay"), &admin).await?;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");

    let replays = audited(&app, "dlq_replayed").await?;
    assert_eq!(replays.len(), 1);
    assert_eq!(replays[0].0, Some(app.admin.id));
    assert_eq!(replays[0].1, id.to_string());
    assert_eq!(
        replays[0].2.as_ref().map(|a| a["message_id"].clone()),
        Some(json!(format!("{id}:r1")))
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discarded_job_is_cancelled_and_leaves_the_queue() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let admin = app.admin.token.clone();
    let kept = dead_job(&app, app.supervisor.id).await?;
    let gone = dead_job(&app, app.supervisor.id).await?;
    let r = listed(&app, "", 2).await?;
    assert_eq!(r.body[0]["job_id"], kept.to_string(), "stream order");
    let r = listed(&app, "?skip=1&limit=1", 1).await?;
    assert_eq!(r.body[0]["job_id"], gone.to_string());
    assert_eq!(total(&r), Some(2));

    let r = post(&app, &format!("/api/v1/admin/dlq/{gone}/discard"), &admin).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "cancelled");
    assert_eq!(r.body["error"]["error"], "discarded");
    let job = app
        .get(&format!("/api/v1/jobs/{gone}"), Some(&app.supervisor.token))
        .await?;
    assert_eq!(job.body["status"], "cancelled", "{}", job.text);
    assert_eq!(job.body["error"]["error"], "discarded", "{}", job.text);
    let status: JobStatus = sqlx::query_scalar("SELECT status FROM jobs WHERE job_id = $1")
        .bind(gone)
        .fetch_one(&app.db)
        .await?;
    assert_eq!(status, JobStatus::Cancelled);
    let r = listed(&app, "", 1).await?;
    assert_eq!(r.body[0]["job_id"], kept.to_string());

    let discards = audited(&app, "dlq_discarded").await?;
    assert_eq!(discards.len(), 1);
    assert_eq!(
        (discards[0].0, discards[0].1.as_str()),
        (Some(app.admin.id), gone.to_string().as_str())
    );

    // The row decides: a record whose job is no longer dead is refused.
    sqlx::query("UPDATE jobs SET status = 'succeeded' WHERE job_id = $1")
        .bind(kept)
        .execute(&app.db)
        .await?;
    let r = post(&app, &format!("/api/v1/admin/dlq/{kept}/discard"), &admin).await?;
    assert_error(&r, StatusCode::CONFLICT, "job_not_dead");
    for bad in [Uuid::now_v7().to_string(), "999999".into(), "nope".into()] {
        let r = post(&app, &format!("/api/v1/admin/dlq/{bad}/discard"), &admin).await?;
        assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    }
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_messages_are_listed_and_can_only_be_discarded() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let admin = app.admin.token.clone();
    let spec = kind_spec("geo.nearest").ok_or_else(|| anyhow::anyhow!("unknown kind"))?;
    app.js
        .publish(app.topology.job_subject(spec), "not a job".into())
        .await?
        .await?;
    let r = listed(&app, "", 1).await?;
    let item = &r.body[0];
    assert_eq!(item["job_id"], Value::Null, "{item}");
    assert_eq!(item["status"], "dead");
    assert_eq!(item["dlq"]["undecodable"], true);
    assert_eq!(item["error"]["error"], "undecodable");
    let seq = item["dlq"]["seq"].as_u64().unwrap_or_default();
    assert_eq!(listed(&app, "?kind=undecodable", 1).await?.body[0]["dlq"]["seq"], seq);

    let r = post(&app, &format!("/api/v1/admin/dlq/{seq}/replay"), &admin).await?;
    assert_error(&r, StatusCode::CONFLICT, "dlq_undecodable");
    let r = post(&app, &format!("/api/v1/admin/dlq/{seq}/discard"), &admin).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "cancelled");
    assert_eq!(r.body["error"]["error"], "discarded");
    listed(&app, "", 0).await?;
    let discards = audited(&app, "dlq_discarded").await?;
    assert_eq!(discards.len(), 1);
    assert_eq!(discards[0].1, format!("dlq:{seq}"));
    app.stop().await
}
