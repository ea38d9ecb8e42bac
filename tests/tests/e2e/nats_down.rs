//! With NATS unreachable, ingress refuses work at once with 503 and
//! `Retry-After`, and no job exists anywhere.

use std::time::{Duration, Instant};

use gad_e2e::spawn_ingress_with_dead_nats;
use reqwest::StatusCode;

use crate::error_shape::assert_error;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nearest_is_refused_quickly_with_retry_after() -> anyhow::Result<()> {
    let app = spawn_ingress_with_dead_nats().await?;
    let query = "/api/v1/geo/nearest?lat=-34.6&lng=-58.4&k=5";
    for prefer in [None, Some("wait=5")] {
        let headers: Vec<(&str, &str)> = prefer.map(|p| ("Prefer", p)).into_iter().collect();
        let started = Instant::now();
        let r = app.get_with(query, Some(&app.supervisor.token), &headers).await?;
        let took = started.elapsed();
        assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "dependency_unavailable");
        let retry_after = r.header("retry-after").and_then(|v| v.parse::<u64>().ok());
        assert!(
            retry_after.is_some_and(|s| s >= 1),
            "Retry-After missing or not seconds: {:?}",
            r.header("retry-after")
        );
        assert!(took < Duration::from_secs(5), "503 took {took:?} (Prefer {prefer:?})");
        assert!(r.header("x-job-id").is_none(), "a refused request has no job");
    }

    // Readiness says the same to a load balancer.
    let r = app.get("/health/ready", None).await?;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert!(r.header("retry-after").is_some());

    // Nothing reached the real server under this test's prefixes, nor the database.
    assert_eq!(
        app.jobs_stream_messages().await?,
        None,
        "a jobs stream exists for this test"
    );
    assert_eq!(
        app.job_status_keys().await?,
        None,
        "a job status bucket exists for this test"
    );
    assert_eq!(app.jobs_rows().await?, 0);
    app.stop().await
}
