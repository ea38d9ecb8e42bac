//! `GET /api/v1/admin/ops` (nivel 3): consumer lag per group, jobs by
//! status and kind, DLQ size, WebSocket connections from the broadcaster and
//! Telegram deliveries, each from its own source; a source that does not
//! answer is `null`, not an error.

use std::time::Duration;

use gad_e2e::tasks::ServiceTasks;
use gad_e2e::{ApiResponse, TestApp, spawn_app, unused_port};
use gad_ingress::IngressSettings;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const WITHIN: Duration = Duration::from_secs(15);

/// A second ingress beside the app's, its ops view reading `stats_url`.
async fn ingress_reading(app: &TestApp, stats_url: String, tasks: &mut ServiceTasks) -> anyhow::Result<String> {
    let mut settings: IngressSettings = gad_e2e::ingress::settings(&app.isolation, app.isolation.nats.clone());
    settings.ingress.broadcaster_stats_url = Some(stats_url);
    settings.ingress.ops_timeout = Duration::from_millis(500);
    let addr = gad_e2e::ingress::start_with(settings, Some(WITHIN), tasks).await?;
    Ok(format!("http://{addr}"))
}

async fn ops(app: &TestApp, base: &str, token: &str) -> anyhow::Result<ApiResponse> {
    let response = app
        .client
        .get(format!("{base}/api/v1/admin/ops"))
        .bearer_auth(token)
        .send()
        .await?;
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(ApiResponse {
        status,
        headers,
        body,
        text,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ops_view_counts_each_figure_where_it_lives() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let mut tasks = ServiceTasks::new(CancellationToken::new());
    let ws = app.ws.clone().unwrap_or_default().replacen("ws://", "http://", 1);
    let base = ingress_reading(&app, format!("{ws}/ws/stats"), &mut tasks).await?;
    let admin = app.admin.token.clone();

    // Two jobs that succeed, one that fails at once.
    for _ in 0..2 {
        let r = app
            .get_with(
                "/api/v1/geo/nearest?lat=-34.6&lng=-58.4&k=2",
                Some(&admin),
                &[("Prefer", "wait=10")],
            )
            .await?;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    // Undecodable bytes published straight to the jobs stream: the workers
    // dead-letter them, so the DLQ holds one record.
    let spec = gad_shared::job::kind_spec("geo.nearest").ok_or_else(|| anyhow::anyhow!("no geo.nearest"))?;
    let subject = app.topology.job_subject(spec);
    app.js.publish(subject, "not a job".into()).await?.await?;
    // No `pending` row: the workers' notify relay would move it to `sending`
    // before or after the ops read, as it pleased.
    sqlx::query(
        "INSERT INTO notifications (event_id, recipient_usuario_id, channel, kind, status)
         SELECT gen_random_uuid(), $1, 'telegram', 'test', s::notification_status
           FROM unnest(ARRAY['sent', 'sent', 'sending', 'failed']) AS s
         UNION ALL SELECT gen_random_uuid(), $1, 'websocket', 'test', 'sent'",
    )
    .bind(app.admin.id)
    .execute(&app.db)
    .await?;
    let _socket = app.ws_connect(&admin).await?;

    let deadline = tokio::time::Instant::now() + WITHIN;
    let body = loop {
        let r = ops(&app, &base, &admin).await?;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        if r.body["dlq"]["messages"] == json!(1) && r.body["websocket"]["connections"].as_u64() >= Some(1) {
            break r.body;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "ops never settled: {}", r.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for group in ["geo", "tasks", "emergency", "import"] {
        let lag = &body["consumer_lag"][group];
        assert!(
            lag["pending"].is_u64() && lag["ack_pending"].is_u64(),
            "{group}: {body}"
        );
    }
    assert_eq!(body["jobs"]["by_kind"]["geo.nearest"]["succeeded"], json!(2), "{body}");
    assert!(body["jobs"]["by_status"]["succeeded"].as_i64() >= Some(2), "{body}");
    assert_eq!(
        body["telegram"],
        json!({"by_status": {"sent": 2, "sending": 1, "failed": 1}, "total": 4}),
        "websocket rows are not Telegram deliveries"
    );

    // The app's own ingress has no broadcaster URL; a second one points at
    // a port nothing listens on: both answer, with `websocket: null`.
    let r = app.get("/api/v1/admin/ops", Some(&admin)).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["websocket"], Value::Null);
    let dead = ingress_reading(
        &app,
        format!("http://127.0.0.1:{}/ws/stats", unused_port()?),
        &mut tasks,
    )
    .await?;
    let began = std::time::Instant::now();
    let r = ops(&app, &dead, &admin).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["websocket"], Value::Null);
    assert!(began.elapsed() < Duration::from_secs(3), "bounded by ops_timeout");
    assert_eq!(r.body["dlq"]["messages"], json!(1));

    let r = ops(&app, &base, &app.supervisor.token).await?;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);

    tasks.stop().await?;
    app.stop().await
}
