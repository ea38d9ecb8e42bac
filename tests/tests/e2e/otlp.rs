//! Span export (`telemetry.otlp_endpoint`): with a collector configured, the
//! worker's job and the broadcaster's delivery of its event reach it as spans
//! of the trace the request arrived with, linked parent to child the way the
//! `traceparent` headers travelled.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use gad_e2e::service_process::{BroadcasterProcess, Config, WorkerProcess};
use gad_e2e::users::ADMIN;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message as _;
use reqwest::StatusCode;
use serde_json::json;

use crate::custom_app::CustomApp;

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";

/// What a collector learnt of one span.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: Vec<(String, String)>,
}

type Spans = Arc<Mutex<Vec<Received>>>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        other => format!("{other:?}"),
    }
}

/// OTLP/HTTP with protobuf bodies, as the services send it.
async fn collect(State(spans): State<Spans>, body: Bytes) -> StatusCode {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut received = Vec::new();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(kv.value.as_ref()))
            .unwrap_or_default();
        for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
            received.push(Received {
                service: service.clone(),
                name: span.name,
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent_span_id: hex(&span.parent_span_id),
                attributes: span
                    .attributes
                    .iter()
                    .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
                    .collect(),
            });
        }
    }
    if let Ok(mut all) = spans.lock() {
        all.extend(received);
    }
    StatusCode::OK
}

async fn start_collector() -> anyhow::Result<(String, Spans)> {
    let spans = Spans::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/v1/traces", listener.local_addr()?);
    let app = Router::new()
        .route("/v1/traces", post(collect))
        .with_state(spans.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, spans))
}

fn find(spans: &Spans, service: &str, name: &str, attribute: (&str, &str)) -> Option<Received> {
    let (key, suffix) = attribute;
    spans.lock().ok().and_then(|all| {
        all.iter()
            .find(|s| {
                s.service == service
                    && s.name == name
                    && s.trace_id == TRACE_ID
                    && s.attributes.iter().any(|(k, v)| k == key && v.ends_with(suffix))
            })
            .cloned()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_run_and_its_events_delivery_are_exported_as_one_trace() -> anyhow::Result<()> {
    let (collector, spans) = start_collector().await?;
    let mut app = CustomApp::new(|_| {}).await?;
    app.start_ingress().await?;
    let admin = app.user(ADMIN).await?;
    let endpoint = format!("{collector:?}");
    let mut workers = Config::workers(&app.iso);
    workers.set("telemetry", "otlp_endpoint", &endpoint);
    let workers = WorkerProcess::start(workers, Duration::from_secs(30)).await?;
    let mut broadcaster = Config::broadcaster(&app.iso);
    broadcaster.set("telemetry", "otlp_endpoint", &endpoint);
    let broadcaster = BroadcasterProcess::start(broadcaster, Duration::from_secs(30)).await?;

    let body = json!({
        "codigo": "OTLP-1",
        "titulo": "Tarea exportada",
        "tipo": "patrullaje",
        "inicio_programado": gad_shared::time::format(&(chrono::Utc::now() + chrono::Duration::hours(1))),
        "delegado_usuario_id": admin.id,
    });
    let http = app.http.clone().unwrap_or_default();
    let client_span = "b7ad6b7169203331";
    let r = app
        .client
        .post(format!("{http}/api/v1/tasks"))
        .bearer_auth(&admin.token)
        .header("traceparent", format!("00-{TRACE_ID}-{client_span}-01"))
        .header("Prefer", "wait=10")
        .json(&body)
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await?);

    // The SDK exports in batches, every few seconds.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let (job, delivery) = loop {
        let job = find(&spans, "gad-workers", "job", ("gad.job.kind", "task.create"));
        let delivery = find(
            &spans,
            "gad-broadcaster",
            "deliver event",
            ("messaging.destination.name", "task_created"),
        );
        if (job.is_some() && delivery.is_some()) || tokio::time::Instant::now() > deadline {
            break (job, delivery);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let seen = || format!("{:#?}", spans.lock().map(|s| s.clone()).unwrap_or_default());
    let job = job.unwrap_or_else(|| panic!("no job span of the trace; received: {}", seen()));
    let delivery = delivery.unwrap_or_else(|| panic!("no delivery span of the trace; received: {}", seen()));

    // Ingress is this hop's parent: neither empty nor the client's own span.
    assert!(
        job.parent_span_id.len() == 16 && job.parent_span_id != client_span,
        "{job:?}"
    );
    assert_eq!(
        delivery.parent_span_id, job.span_id,
        "the delivery's parent is the job that published the event"
    );
    drop((workers, broadcaster));
    app.stop().await
}
