//! AMQP ingest (issue 8): jobs a legacy system publishes to a RabbitMQ
//! exchange reach `GAD_JOBS` and run once each; what does not decode is kept
//! on the dead-letter stream; and a message is acknowledged to RabbitMQ only
//! once JetStream stored it, so a NATS outage loses nothing.

use std::time::Duration;

use gad_e2e::amqp::AmqpTopic;
use gad_e2e::nats_server::NatsServer;
use gad_e2e::scrape::{Recorder, sample};
use gad_e2e::spawn_app;
use gad_shared::envelope::{self, ENVELOPE_VERSION, JobEnvelope};
use gad_shared::settings::NatsSettings;
use gad_shared::topology::{self, Topology};
use gad_workers::amqp_bridge::{self, Target};
use gad_workers::settings::AmqpBridgeSettings;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::chaos::load;
use crate::custom_app::CustomApp;

const WITHIN: Duration = Duration::from_secs(30);
const BRIDGED: &str = gad_shared::metric_names::AMQP_BRIDGE_MESSAGES;

fn noop(job_id: Uuid) -> JobEnvelope {
    JobEnvelope {
        v: ENVELOPE_VERSION,
        job_id,
        kind: "import.noop".into(),
        submitted_by: None,
        submitted_at: chrono::Utc::now(),
        request_id: None,
        client: None,
        payload: serde_json::json!({}),
    }
}

/// Starts the bridge in this process between `topic` and the NATS of `nats`.
async fn start_bridge(
    topic: &AmqpTopic,
    nats: &NatsSettings,
    edit: impl FnOnce(&mut AmqpBridgeSettings),
) -> anyhow::Result<CancellationToken> {
    let mut settings = AmqpBridgeSettings {
        url: Some(topic.url.clone()),
        exchange: topic.exchange.clone(),
        queue: topic.queue.clone(),
        retry_delay: Duration::from_millis(200),
        ..AmqpBridgeSettings::default()
    };
    edit(&mut settings);
    let (_client, js) = topology::connect(nats).await?;
    let target = Target {
        js,
        topology: Topology::new(nats),
        publish_timeout: Duration::from_millis(500),
    };
    let stop = CancellationToken::new();
    tokio::spawn(amqp_bridge::run(settings, target, stop.clone()));
    topic.wait_consuming(Duration::from_secs(10)).await?;
    Ok(stop)
}

async fn wait_empty(topic: &AmqpTopic) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + WITHIN;
    while topic.ready().await? != Some(0) {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "RabbitMQ still holds {:?} messages",
            topic.ready().await?
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_jobs_run_once_each_and_garbage_is_dead_lettered() -> anyhow::Result<()> {
    // nextest runs each test in a process of its own: this recorder sees this bridge only.
    let recorder = Recorder::install()?;
    let app = spawn_app().await?;
    let topic = AmqpTopic::new().await?;
    let stop = start_bridge(&topic, &app.isolation.nats, |_| {}).await?;

    let ids: Vec<Uuid> = (0..6).map(|_| Uuid::now_v7()).collect();
    for id in &ids[..5] {
        topic
            .publish(&envelope::encode(&noop(*id))?, "application/msgpack", None)
            .await?;
    }
    // Importers in other languages send JSON.
    topic
        .publish(&serde_json::to_vec(&noop(ids[5]))?, "application/json", None)
        .await?;
    // A legacy system retrying a publish it thought lost.
    topic
        .publish(&envelope::encode(&noop(ids[0]))?, "application/msgpack", None)
        .await?;
    topic
        .publish(b"\xc1 not an envelope", "application/msgpack", Some("legacy-42"))
        .await?;

    let outcome = async {
        let by_status = load::wait_terminal(&app.db, &ids, WITHIN).await?;
        wait_empty(&topic).await?;
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE job_id = ANY($1)")
            .bind(&ids)
            .fetch_one(&app.db)
            .await?;
        let dead = dead_letters(&app).await?;
        let metrics = recorder.scrape().await?;
        anyhow::Ok((by_status, rows, dead, metrics))
    }
    .await;
    stop.cancel();
    topic.remove().await?;
    let (by_status, rows, dead, metrics) = outcome?;

    assert_eq!(by_status.get("succeeded"), Some(&6), "{by_status:?}");
    assert_eq!(rows, 6);
    let bridged = |outcome: &str| sample(&metrics, BRIDGED, &[&format!("outcome=\"{outcome}\"")]);
    assert_eq!(bridged("forwarded"), Some(6.0), "{metrics}");
    assert_eq!(
        bridged("duplicate"),
        Some(1.0),
        "JetStream dropped the republished copy by its job id"
    );
    assert_eq!(bridged("unroutable"), Some(1.0));
    assert!(
        dead.iter()
            .any(|d| d["dlq"]["undecodable"] == true && d["error"]["error"] == "undecodable"),
        "the garbage is kept on the dead-letter stream: {dead:?}"
    );
    app.stop().await
}

/// The DLQ as an operator lists it, once it holds something.
async fn dead_letters(app: &gad_e2e::TestApp) -> anyhow::Result<Vec<Value>> {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let r = app.get("/api/v1/admin/dlq", Some(app.admin.token.as_str())).await?;
        if let Some(items) = r.body.as_array().filter(|a| !a.is_empty()) {
            return Ok(items.clone());
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "DLQ still empty: {}", r.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_nats_is_down_messages_stay_in_rabbitmq_and_all_run_once_it_is_back() -> anyhow::Result<()> {
    let _logs = gad_shared::telemetry::init_tracing(
        &gad_shared::settings::TelemetrySettings {
            log_filter: std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()),
            ..Default::default()
        },
        "gad-tests",
    );
    let mut nats = NatsServer::start().await?;
    let url = nats.url();
    let mut app = CustomApp::new(|iso| iso.nats.url = url).await?;
    app.start_workers(|s| s.workers.groups = vec!["import".into()]).await?;
    let topic = AmqpTopic::new().await?;
    // Two in flight: the rest must still be waiting in RabbitMQ.
    let stop = start_bridge(&topic, &app.iso.nats, |s| s.prefetch = 2).await?;

    nats.down().await?;
    let ids: Vec<Uuid> = (0..10).map(|_| Uuid::now_v7()).collect();
    for id in &ids {
        topic
            .publish(&envelope::encode(&noop(*id))?, "application/msgpack", None)
            .await?;
    }
    // The two in flight time out and are published again, several times.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let waiting_while_down = topic.ready().await?;

    nats.up().await?;
    let outcome = async {
        let by_status = match load::wait_terminal(&app.db, &ids, WITHIN).await {
            Ok(by_status) => by_status,
            Err(e) => {
                let waiting = topic.ready().await?;
                let (_c, js) = topology::connect(&app.iso.nats).await?;
                let mut stream = js.get_stream(Topology::new(&app.iso.nats).jobs_stream()).await?;
                let info = stream.info().await?.state.clone();
                anyhow::bail!("{e:#}; RabbitMQ still holds {waiting:?} ready messages; jobs stream {info:?}")
            }
        };
        wait_empty(&topic).await?;
        anyhow::Ok(by_status)
    }
    .await;
    stop.cancel();
    topic.remove().await?;
    let by_status = outcome?;

    assert!(
        waiting_while_down.is_some_and(|n| n >= 8),
        "nothing is acknowledged to RabbitMQ before JetStream stores it: {waiting_while_down:?} waiting"
    );
    assert_eq!(by_status.get("succeeded"), Some(&10), "{by_status:?}");
    app.stop().await?;
    drop(nats);
    Ok(())
}
