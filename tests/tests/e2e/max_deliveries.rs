//! A job whose deliveries are never acknowledged (its worker crashes every
//! time) stops being delivered at the consumer's `max_deliver`. It must end
//! in the DLQ with its row `dead`, not stay silently in the jobs stream.
//!
//! The crashing worker is played by the test: it binds the `geo` consumer
//! itself (the worker process runs only `tasks`) and never acknowledges.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, pull};
use chrono::Utc;
use futures::StreamExt;
use gad_shared::envelope::{self, CONTENT_TYPE_MSGPACK, ENVELOPE_VERSION, JobEnvelope, headers};
use gad_shared::job::{JobStatus, kind_spec};
use gad_shared::topology::{self, Topology};
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

use crate::custom_app::CustomApp;

const WITHIN: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_never_acknowledged_ends_dead_in_the_dlq_once() -> anyhow::Result<()> {
    let mut app = CustomApp::new(|_| {}).await?;
    app.start_workers(|s| s.workers.groups = vec!["tasks".into()]).await?;
    app.start_ingress().await?;
    let admin = app.user(gad_e2e::users::ADMIN).await?;
    let (_client, js) = topology::connect(&app.iso.nats).await?;
    let topology = Topology::new(&app.iso.nats);

    let jobs = js.get_stream(topology.jobs_stream()).await?;
    let consumer = jobs
        .create_consumer(pull::Config {
            durable_name: Some("geo".into()),
            filter_subject: topology.group_filter("geo"),
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_millis(300),
            max_deliver: 2,
            ..Default::default()
        })
        .await?;

    let job: JobEnvelope = serde_json::from_value(json!({
        "v": ENVELOPE_VERSION,
        "job_id": Uuid::now_v7(),
        "kind": "geo.nearest",
        "submitted_by": admin.id,
        "submitted_at": Utc::now(),
        "payload": {"lat": -34.6037, "lng": -58.3816, "k": 3},
    }))?;
    let spec = kind_spec(&job.kind).ok_or_else(|| anyhow::anyhow!("unknown kind"))?;
    let mut hdrs = HeaderMap::new();
    hdrs.insert(headers::CONTENT_TYPE, CONTENT_TYPE_MSGPACK);
    hdrs.insert(headers::MSG_ID, job.job_id.to_string().as_str());
    js.publish_with_headers(topology.job_subject(spec), hdrs, envelope::encode(&job)?)
        .await?
        .await?;

    // Two deliveries, neither acknowledged: the worker "crashed" each time.
    let mut deliveries = 0;
    let deadline = tokio::time::Instant::now() + WITHIN;
    while deliveries < 2 {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "only {deliveries} deliveries");
        let mut batch = consumer
            .fetch()
            .max_messages(1)
            .expires(Duration::from_millis(500))
            .messages()
            .await?;
        while let Some(m) = batch.next().await {
            drop(m.map_err(|e| anyhow::anyhow!(e))?);
            deliveries += 1;
        }
    }

    let row = loop {
        let row: Option<(JobStatus, i32, Option<serde_json::Value>)> =
            sqlx::query_as("SELECT status, attempts, error FROM jobs WHERE job_id = $1")
                .bind(job.job_id)
                .fetch_optional(&app.db)
                .await?;
        if let Some(row) = row.clone().filter(|r| r.0 == JobStatus::Dead) {
            break row;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "never dead: {row:?}");
        // The server notices the exhausted message (and sends the advisory)
        // only when a pull asks for more, as a live worker's always does.
        let mut batch = consumer
            .fetch()
            .max_messages(1)
            .expires(Duration::from_millis(200))
            .messages()
            .await?;
        while let Some(m) = batch.next().await {
            anyhow::ensure!(m.is_err(), "delivered beyond max_deliver");
        }
    };
    assert_eq!(row.1, 2, "attempts = deliveries");
    assert_eq!(row.2.map(|e| e["error"].clone()), Some(json!("max_deliveries")));

    let r = app.send(Method::GET, "/api/v1/admin/dlq", &admin.token).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let items = r.body.as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "exactly one record: {}", r.text);
    assert_eq!(items[0]["job_id"], job.job_id.to_string());
    assert_eq!(items[0]["status"], "dead");

    let r = app
        .send(Method::GET, &format!("/api/v1/jobs/{}", job.job_id), &admin.token)
        .await?;
    assert_eq!(r.body["status"], "dead", "{}", r.text);
    // Nothing left behind in the work queue.
    let left = js
        .get_stream(topology.jobs_stream())
        .await?
        .info()
        .await?
        .state
        .messages;
    assert_eq!(left, 0);
    app.stop().await
}
