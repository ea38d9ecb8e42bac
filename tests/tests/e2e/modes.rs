//! The three ways a client gets a queued job's outcome (domain.md §6.1, §8):
//! waiting on the request, polling the job, or a WebSocket subscription.

use std::time::Duration;

use gad_e2e::{ApiResponse, TestApp, spawn_app};
use reqwest::StatusCode;
use serde_json::Value;

const NEAREST: &str = "/api/v1/geo/nearest?lat=-34.6037&lng=-58.3816&k=7";
const JOB_WITHIN: Duration = Duration::from_secs(15);

/// The items of a nearest answer, checked to be sorted nearest first.
fn items_nearest_first(body: &Value, k: usize) -> Vec<Value> {
    let items = body["items"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no items array in {body}"));
    assert!(
        !items.is_empty() && items.len() <= k,
        "expected 1..={k} items, got {}",
        items.len()
    );
    let distances: Vec<f64> = items
        .iter()
        .map(|i| i["distance_m"].as_f64().unwrap_or(f64::NAN))
        .collect();
    assert!(
        distances.windows(2).all(|w| w[0] <= w[1]),
        "not nearest first: {distances:?}"
    );
    for item in &items {
        assert_eq!(item["disponibilidad"], "disponible", "{item}");
        for field in ["efectivo_id", "usuario_id"] {
            assert!(item[field].is_i64(), "{field} missing in {item}");
        }
        for field in ["lat", "lng", "distance_m"] {
            assert!(item[field].is_f64(), "{field} missing in {item}");
        }
        assert!(item["codigo_interno"].is_string(), "{item}");
    }
    items
}

/// RFC 3339 in UTC with milliseconds and `Z`, e.g. `2026-11-28T10:00:00.123Z`.
fn assert_timestamp_millis_z(value: &Value, what: &str) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value}"));
    assert!(
        chrono::DateTime::parse_from_rfc3339(text).is_ok(),
        "{what} is not RFC 3339: {text}"
    );
    let fraction = text.strip_suffix('Z').and_then(|t| t.rsplit_once('.')).map(|(_, f)| f);
    assert!(
        fraction.is_some_and(|f| f.len() == 3 && f.bytes().all(|b| b.is_ascii_digit())),
        "{what} lacks milliseconds and Z: {text}"
    );
}

/// A 202 with its body, Location and job header; returns the job id.
fn accepted_job_id(r: &ApiResponse) -> String {
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let job_id = r.body["job_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no job_id: {}", r.text))
        .to_string();
    assert!(uuid::Uuid::parse_str(&job_id).is_ok(), "job_id is not a uuid: {job_id}");
    let status_url = format!("/api/v1/jobs/{job_id}");
    assert_eq!(r.body["status_url"], status_url.as_str());
    assert_eq!(r.body["channel"], format!("jobs.{job_id}"));
    assert_eq!(r.header("location"), Some(status_url.as_str()));
    assert_eq!(r.header("x-job-id"), Some(job_id.as_str()));
    job_id
}

async fn submit_async(app: &TestApp) -> anyhow::Result<String> {
    let r = app.get(NEAREST, Some(&app.supervisor.token)).await?;
    Ok(accepted_job_id(&r))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_mode_answers_with_the_result() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let r = app
        .get_with(NEAREST, Some(&app.supervisor.token), &[("Prefer", "wait=5")])
        .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.header("preference-applied"), Some("wait=5"));
    let job_id = r.header("x-job-id").unwrap_or_default().to_string();
    assert!(
        uuid::Uuid::parse_str(&job_id).is_ok(),
        "X-Job-Id is not a job id: {job_id:?}"
    );
    let items = items_nearest_first(&r.body, 7);
    assert_eq!(items.len(), 7, "the seeded city has more than 7 available units");

    // The job behind the answer is on record with the same result.
    let job = app.wait_for_job(&job_id, &app.supervisor.token, JOB_WITHIN).await?;
    assert_eq!(job["status"], "succeeded");
    assert_eq!(job["result"]["body"], r.body);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_mode_accepts_then_reports_the_outcome() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let job_id = submit_async(&app).await?;

    let job = app.wait_for_job(&job_id, &app.supervisor.token, JOB_WITHIN).await?;
    assert_eq!(job["job_id"], job_id.as_str());
    assert_eq!(job["kind"], "geo.nearest");
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(job["attempts"].as_u64().is_some_and(|a| a >= 1), "{job}");
    assert_eq!(job["max_attempts"], 5);
    assert_eq!(job["submitted_by"], app.supervisor.id);
    assert_timestamp_millis_z(&job["created_at"], "created_at");
    assert_timestamp_millis_z(&job["started_at"], "started_at");
    assert_timestamp_millis_z(&job["finished_at"], "finished_at");
    assert_eq!(job["result"]["http_status"], 200, "{job}");
    let items = items_nearest_first(&job["result"]["body"], 7);
    assert_eq!(items.len(), 7);
    assert!(job["error"].is_null(), "{job}");

    // The durable row agrees with what the poll showed.
    let (status, attempts): (String, i32) =
        sqlx::query_as("SELECT status::text, attempts FROM jobs WHERE job_id = $1::uuid")
            .bind(&job_id)
            .fetch_one(&app.db)
            .await?;
    assert_eq!(status, "succeeded");
    assert!(attempts >= 1);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_subscriber_receives_the_outcome() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let mut ws = app.ws_connect(&app.supervisor.token).await?;
    let ack = ws.next_frame(Duration::from_secs(5)).await?;
    assert_eq!(ack["event_type"], "connection_ack", "{ack}");
    assert_eq!(ack["data"]["user_id"], app.supervisor.id, "{ack}");
    assert_eq!(ack["data"]["nivel"], 2, "{ack}");

    let job_id = submit_async(&app).await?;
    let topic = format!("jobs.{job_id}");
    let subscribed = ws.subscribe(std::slice::from_ref(&topic)).await?;
    let topics = subscribed["data"]["topics"].as_array().cloned().unwrap_or_default();
    assert!(
        topics.iter().any(|t| t["topic"] == topic.as_str()),
        "not subscribed: {subscribed}"
    );
    assert!(
        subscribed["data"]["denied"].as_array().is_some_and(Vec::is_empty),
        "{subscribed}"
    );

    // Either the current-status frame sent on subscribe or the live update.
    let done = ws
        .next_matching(JOB_WITHIN, |f| {
            f["event_type"] == "job_updated" && f["data"]["status"] == "succeeded"
        })
        .await?;
    assert_job_updated(&done, &job_id);
    ws.close().await;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_after_the_job_finished_still_gets_the_outcome() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let job_id = submit_async(&app).await?;
    let job = app.wait_for_job(&job_id, &app.supervisor.token, JOB_WITHIN).await?;
    assert_eq!(job["status"], "succeeded", "{job}");

    let mut ws = app.ws_connect(&app.supervisor.token).await?;
    let ack = ws.next_frame(Duration::from_secs(5)).await?;
    assert_eq!(ack["event_type"], "connection_ack", "{ack}");
    let topic = format!("jobs.{job_id}");
    ws.subscribe(std::slice::from_ref(&topic)).await?;
    let done = ws
        .next_matching(Duration::from_secs(5), |f| {
            f["event_type"] == "job_updated" && f["data"]["status"] == "succeeded"
        })
        .await?;
    assert_job_updated(&done, &job_id);
    assert_eq!(done["data"]["result"], job["result"], "the frame and the poll disagree");
    ws.close().await;
    app.stop().await
}

fn assert_job_updated(frame: &Value, job_id: &str) {
    assert_eq!(frame["event_type"], "job_updated", "{frame}");
    assert_eq!(frame["topic"], format!("jobs.{job_id}"), "{frame}");
    assert!(frame["message_id"].is_string(), "{frame}");
    assert!(frame["timestamp"].is_string(), "{frame}");
    let data = &frame["data"];
    assert_eq!(data["job_id"], job_id, "{frame}");
    assert_eq!(data["kind"], "geo.nearest", "{frame}");
    assert_eq!(data["status"], "succeeded", "{frame}");
    assert!(data["attempts"].as_u64().is_some_and(|a| a >= 1), "{frame}");
    assert_eq!(data["result"]["http_status"], 200, "{frame}");
    items_nearest_first(&data["result"]["body"], 7);
}
