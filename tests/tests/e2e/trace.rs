//! One job, one trace: a `traceparent` sent with a request reaches the
//! worker that runs the job and the broadcaster that delivers its event, and
//! each logs the trace id on its lines about it.

use std::time::Duration;

use gad_e2e::service_process::{BroadcasterProcess, Config, WorkerProcess};
use gad_e2e::users::ADMIN;
use reqwest::StatusCode;
use serde_json::json;

use crate::custom_app::CustomApp;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_id_sent_with_a_request_is_on_the_workers_and_the_broadcasters_lines_for_its_job() -> anyhow::Result<()>
{
    let mut app = CustomApp::new(|_| {}).await?;
    app.start_ingress().await?;
    let admin = app.user(ADMIN).await?;
    let mut workers = Config::workers(&app.iso);
    workers.capture_log("warn,gad_workers::process=debug");
    let workers = WorkerProcess::start(workers, Duration::from_secs(30)).await?;
    let mut broadcaster = Config::broadcaster(&app.iso);
    broadcaster.capture_log("warn,gad_broadcaster::feed=debug");
    let broadcaster = BroadcasterProcess::start(broadcaster, Duration::from_secs(30)).await?;

    let body = json!({
        "codigo": "TRACE-1",
        "titulo": "Tarea trazada",
        "tipo": "patrullaje",
        "inicio_programado": gad_shared::time::format(&(chrono::Utc::now() + chrono::Duration::hours(1))),
        "delegado_usuario_id": admin.id,
    });
    let http = app.http.clone().unwrap_or_default();
    let r = app
        .client
        .post(format!("{http}/api/v1/tasks"))
        .bearer_auth(&admin.token)
        .header("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))
        .header("Prefer", "wait=10")
        .json(&body)
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await?);

    // The event reaches the broadcaster after the relay publishes it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let (worker_log, broadcaster_log) = loop {
        let (w, b) = (workers.log()?, broadcaster.log()?);
        if (w.contains(TRACE_ID) && b.contains(TRACE_ID)) || tokio::time::Instant::now() > deadline {
            break (w, b);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let line = |log: &str, what: &str| log.lines().any(|l| l.contains(TRACE_ID) && l.contains(what));
    assert!(line(&worker_log, "job finished"), "workers' log:\n{worker_log}");
    assert!(
        line(&broadcaster_log, "event delivered") && line(&broadcaster_log, "task_created"),
        "broadcaster's log:\n{broadcaster_log}"
    );
    drop((workers, broadcaster));
    app.stop().await
}
