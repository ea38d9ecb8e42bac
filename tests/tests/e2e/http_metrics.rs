//! The two HTTP metrics existing alert rules use (§6.5), labelled with the
//! route template so one series covers every id.

use gad_e2e::scrape::{Recorder, sample};
use gad_e2e::spawn_app;
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_counted_and_timed_by_route_template() -> anyhow::Result<()> {
    // This test binary's process gets its own recorder (nextest runs each test alone).
    let recorder = Recorder::install()?;
    let app = spawn_app().await?;
    for _ in 0..3 {
        let id = uuid::Uuid::now_v7();
        let r = app.get(&format!("/api/v1/jobs/{id}"), Some(&app.admin.token)).await?;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
    let text = recorder.scrape().await?;
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
    // Counted in while handled, out when answered.
    assert_eq!(sample(&text, "gad_http_requests_in_flight", &[]), Some(0.0), "{text}");
    app.stop().await
}
