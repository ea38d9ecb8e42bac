//! The workers' per-kind metrics (issue 4, "Metrics"), scraped as Prometheus
//! would: started and succeeded counted per kind, the run timed, nothing left
//! in flight, each group's consumer lag published, and the waits for pooled
//! connections observed.

use std::time::Duration;

use gad_e2e::scrape::{Recorder, sample};
use gad_e2e::spawn_app;
use reqwest::StatusCode;

const NEAREST: &str = "/api/v1/geo/nearest?lat=-34.6037&lng=-58.3816&k=3";

/// The value of the sample named `name` whose labels contain `labels`.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_counted_timed_and_its_lane_lag_published() -> anyhow::Result<()> {
    // This test binary's process gets its own recorder (nextest runs each test alone).
    let recorder = Recorder::install()?;
    let app = spawn_app().await?;
    let sup = app.supervisor.token.clone();
    for _ in 0..2 {
        let r = app.get_with(NEAREST, Some(&sup), &[("Prefer", "wait=10")]).await?;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let kind = r#"kind="geo.nearest""#;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let text = loop {
        let text = recorder.scrape().await?;
        let ready = sample(&text, "gad_jobs_succeeded_total", &[kind]) == Some(2.0)
            && sample(&text, "job_queue_depth", &[r#"lane="geo""#]).is_some()
            && sample(&text, "notifications_pending", &["channel="]).is_some()
            && text.contains("process_resident_memory_bytes ")
            && sample(&text, "gad_db_pool_connections", &[r#"state="in_use""#]).is_some()
            // Every job borrows pooled connections: each wait is observed.
            && sample(&text, "gad_db_pool_acquire_wait_seconds_count", &[]).is_some_and(|n| n >= 2.0);
        if ready {
            break text;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "metrics never complete:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(sample(&text, "gad_jobs_started_total", &[kind]), Some(2.0));
    assert_eq!(sample(&text, "gad_jobs_in_flight", &[kind]), Some(0.0));
    assert_eq!(sample(&text, "gad_jobs_dead_total", &[kind]), None, "nothing died");
    assert_eq!(
        sample(&text, "job_duration_seconds_count", &[kind]),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "jobs_finished_total",
            &[r#"kind="geo.nearest",status="succeeded""#]
        ),
        Some(2.0),
        "{text}"
    );
    // Bucketed (alert rules aggregate it across replicas) and described.
    assert!(text.contains("# TYPE job_duration_seconds histogram"), "{text}");
    assert!(text.contains("# HELP job_duration_seconds "), "{text}");
    assert!(
        sample(&text, "job_duration_seconds_bucket", &[r#"le="0.15""#]).is_some(),
        "{text}"
    );
    assert_eq!(sample(&text, "job_queue_depth", &[r#"lane="geo""#]), Some(0.0));
    // The notification backlog is read at start: nothing waits in a fresh database.
    assert_eq!(
        sample(&text, "notifications_pending", &[r#"channel="telegram",priority="0""#]),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "notification_oldest_unacked_seconds",
            &[r#"channel="telegram",priority="0""#]
        ),
        Some(0.0),
        "{text}"
    );
    // The queue's own cost and the pool's use.
    assert_eq!(
        sample(&text, "gad_job_queue_wait_seconds_count", &[kind]),
        Some(2.0),
        "{text}"
    );
    assert!(
        sample(&text, "gad_db_pool_max_connections", &[r#"pool="main""#]).is_some_and(|n| n >= 1.0),
        "{text}"
    );
    let rss = text
        .lines()
        .find_map(|l| l.strip_prefix("process_resident_memory_bytes ")?.parse::<f64>().ok());
    assert!(rss.is_some_and(|b| b > 1e6), "process metrics: {text}");
    app.stop().await
}
