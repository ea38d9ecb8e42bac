//! The ingress at the edge (§6.4): rate limits shared by replicas through
//! Redis and keyed so that forged headers do not help, load shedding past
//! the concurrency limits, admission control on a lane's backlog.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use gad_e2e::tasks::ServiceTasks;
use gad_e2e::users;
use gad_ingress::IngressSettings;
use gad_shared::queue::Backend;
use reqwest::StatusCode;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::custom_app::CustomApp;

async fn start(app: &CustomApp, edit: impl FnOnce(&mut IngressSettings)) -> anyhow::Result<(String, ServiceTasks)> {
    let mut tasks = ServiceTasks::new(CancellationToken::new());
    let mut settings = gad_e2e::ingress::settings(&app.iso, app.iso.nats.clone());
    edit(&mut settings);
    let addr: SocketAddr = gad_e2e::ingress::start_with(settings, Some(Duration::from_secs(10)), &mut tasks).await?;
    Ok((format!("http://{addr}"), tasks))
}

fn limited(settings: &mut IngressSettings) {
    let rl = &mut settings.ingress.rate_limit;
    rl.enabled = true;
    rl.reads_per_minute = 20.try_into().unwrap_or(rl.reads_per_minute);
    rl.login_per_minute = 5.try_into().unwrap_or(rl.login_per_minute);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ingress_replicas_share_one_rate_limit_budget() -> anyhow::Result<()> {
    let app = CustomApp::new(|_| {}).await?;
    let (a, mut tasks_a) = start(&app, limited).await?;
    let (b, mut tasks_b) = start(&app, limited).await?;
    let admin = app.user(users::ADMIN).await?;

    let mut allowed = 0;
    let mut refused = None;
    for i in 0..60 {
        let base = if i % 2 == 0 { &a } else { &b };
        let r = app
            .client
            .get(format!("{base}/api/v1/jobs/{}", uuid::Uuid::now_v7()))
            .bearer_auth(&admin.token)
            .send()
            .await?;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            refused.get_or_insert(r);
        } else {
            assert_eq!(r.status(), StatusCode::NOT_FOUND);
            assert_eq!(r.headers()["x-ratelimit-limit"], "20");
            allowed += 1;
        }
    }
    // Each replica alone would have let 20 through: together they let 20.
    assert_eq!(allowed, 20, "requests let through by both replicas together");
    let refused = refused.ok_or_else(|| anyhow::anyhow!("never limited"))?;
    let retry: u64 = refused.headers()["retry-after"].to_str()?.parse()?;
    assert!((1..=3).contains(&retry), "Retry-After {retry}");
    assert_eq!(refused.headers()["x-ratelimit-remaining"], "0");
    assert!(refused.headers().contains_key("x-ratelimit-reset"));
    let body: Value = refused.json().await?;
    assert_eq!(body["error"], "rate_limited");
    assert!(body["request_id"].is_string());

    // Probes are never limited.
    let health = app.client.get(format!("{a}/health")).send().await?;
    assert_eq!(health.status(), StatusCode::OK);
    tasks_a.stop().await?;
    tasks_b.stop().await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_forwarded_for_from_an_untrusted_peer_does_not_change_the_key() -> anyhow::Result<()> {
    let app = CustomApp::new(|_| {}).await?;
    let (base, mut tasks) = start(&app, limited).await?;
    let mut statuses = Vec::new();
    for i in 0..8 {
        // A different account and a different claimed address each time:
        // only the TCP peer counts, so the sixth attempt is refused.
        let r = app
            .client
            .post(format!("{base}/api/v1/auth/login"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .json(&serde_json::json!({ "username": format!("nobody{i}@example.org"), "password": "wrong-password-1" }))
            .send()
            .await?;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
    tasks.stop().await?;
    app.stop().await
}

/// A request whose body arrives over `slow`: it holds its place meanwhile.
async fn slow_login(client: reqwest::Client, url: String, slow: Duration) -> (StatusCode, Duration) {
    let started = Instant::now();
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from_static(b"{\"username\": \"nobody@example.org\",")),
        Ok(Bytes::from_static(b" \"password\": \"wrong-password-1\"}")),
    ];
    let body = futures::stream::iter(chunks).then(move |c| async move {
        if c.as_ref().is_ok_and(|b| b.starts_with(b" ")) {
            tokio::time::sleep(slow).await;
        }
        c
    });
    let status = match client
        .post(url)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
    {
        Ok(r) => r.status(),
        Err(_) => StatusCode::IM_A_TEAPOT,
    };
    (status, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_hard_limit_requests_are_refused_at_once_and_admitted_ones_finish() -> anyhow::Result<()> {
    let app = CustomApp::new(|_| {}).await?;
    let (base, mut tasks) = start(&app, |s| {
        s.ingress.shedding.soft_limit = 2;
        s.ingress.shedding.hard_limit = 4;
        s.ingress.shedding.queue_timeout = Duration::from_secs(5);
    })
    .await?;
    let slow = Duration::from_millis(800);
    let mut running = Vec::new();
    for _ in 0..8 {
        let url = format!("{base}/api/v1/auth/login");
        running.push(tokio::spawn(slow_login(app.client.clone(), url, slow)));
        // In order, so the first four are the admitted ones.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let mut outcomes = Vec::new();
    for r in running {
        outcomes.push(r.await?);
    }
    for (status, took) in &outcomes[4..] {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(*took < slow, "refused at once, not after {took:?}");
    }
    for (status, _) in &outcomes[..4] {
        assert_eq!(
            *status,
            StatusCode::UNAUTHORIZED,
            "admitted requests finish: {outcomes:?}"
        );
    }
    // Past the soft limit the two later ones waited for a turn: neither
    // finished before the first admitted request freed one.
    let first_done = outcomes[0].1.min(outcomes[1].1);
    for (_, took) in &outcomes[2..4] {
        assert!(*took + Duration::from_millis(50) >= first_done, "{outcomes:?}");
    }
    let health = app.client.get(format!("{base}/health")).send().await?;
    assert_eq!(health.status(), StatusCode::OK);
    tasks.stop().await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_over_its_backlog_threshold_refuses_jobs_and_records_nothing() -> anyhow::Result<()> {
    lane_over_its_backlog(Backend::Jetstream).await
}

/// The same, the backlog read from the lane's RabbitMQ queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_rabbitmq_a_lane_over_its_backlog_threshold_refuses_jobs() -> anyhow::Result<()> {
    lane_over_its_backlog(Backend::Rabbitmq).await
}

async fn lane_over_its_backlog(backend: Backend) -> anyhow::Result<()> {
    let mut app = CustomApp::new(|iso| iso.queue.backend = backend).await?;
    // The workers create the lanes' consumers; nothing is pending in them.
    app.start_workers(|_| {}).await?;
    let (base, mut tasks) = start(&app, |s| {
        s.ingress.admission.max_backlog.insert("geo".into(), 0);
        s.ingress.admission.poll_interval = Duration::from_millis(50);
    })
    .await?;
    let admin = app.user(users::ADMIN).await?;
    let nearest = format!("{base}/api/v1/geo/nearest?lat=-34.6&lng=-58.4");
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let r = app.client.get(&nearest).bearer_auth(&admin.token).send().await?;
        if r.status() == StatusCode::SERVICE_UNAVAILABLE {
            break r;
        }
        anyhow::ensure!(Instant::now() < deadline, "the geo lane never refused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await?;
    assert_eq!(body["error"], "queue_full");
    let geo_jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'geo.nearest'")
        .fetch_one(&app.db)
        .await?;
    // Jobs accepted before the first reading are fine; none after it.
    let again = app.client.get(&nearest).bearer_auth(&admin.token).send().await?;
    assert_eq!(again.status(), StatusCode::SERVICE_UNAVAILABLE);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'geo.nearest'")
        .fetch_one(&app.db)
        .await?;
    assert_eq!(after, geo_jobs, "a refused request records no job");

    // Other lanes are unaffected.
    let task: i64 = sqlx::query_scalar("SELECT id FROM tareas WHERE deleted_at IS NULL ORDER BY id LIMIT 1")
        .fetch_one(&app.db)
        .await?;
    let other = app
        .client
        .delete(format!("{base}/api/v1/tasks/{task}"))
        .bearer_auth(&admin.token)
        .send()
        .await?;
    assert!(
        other.status().is_success(),
        "the tasks lane still takes jobs: {}",
        other.status()
    );
    tasks.stop().await?;
    app.stop().await
}
