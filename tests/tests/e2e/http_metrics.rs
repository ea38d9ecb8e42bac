//! The two HTTP metrics existing alert rules use (§6.5), labelled with the
//! route template so one series covers every id.

use gad_e2e::{spawn_app, unused_port};
use reqwest::StatusCode;

fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_counted_and_timed_by_route_template() -> anyhow::Result<()> {
    // This test binary's process gets its own recorder (nextest runs each test alone).
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], unused_port()?));
    gad_shared::telemetry::init_metrics(addr)?;
    let app = spawn_app().await?;
    for _ in 0..3 {
        let id = uuid::Uuid::now_v7();
        let r = app.get(&format!("/api/v1/jobs/{id}"), Some(&app.admin.token)).await?;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
    let text = app
        .client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let labels = [r#"method="GET""#, r#"route="/api/v1/jobs/{id}""#, r#"status="404""#];
    assert_eq!(sample(&text, "http_requests_total", &labels), Some(3.0), "{text}");
    assert_eq!(
        sample(&text, "http_request_duration_seconds_count", &labels),
        Some(3.0),
        "{text}"
    );
    assert!(
        !text.contains("route=\"/api/v1/jobs/0"),
        "raw paths never become labels"
    );
    app.stop().await
}
