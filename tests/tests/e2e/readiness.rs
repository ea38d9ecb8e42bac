//! Readiness (§6.3) with a soft dependency down: Redis unreachable makes
//! ingress `degraded` (still 200: it keeps accepting work) and it is `ok`
//! again once Redis is back. NATS down (503) is in `nats_down`, draining in
//! the drain tests.

use std::time::Duration;

use gad_e2e::tcp_proxy::TcpProxy;
use gad_e2e::users::ADMIN;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::custom_app::CustomApp;

/// Polls readiness until its `status` is `want`; the last answer either way.
async fn ready_until(app: &CustomApp, token: &str, want: &str) -> anyhow::Result<(StatusCode, Value)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = app.send(Method::GET, "/health/ready", token).await?;
        if r.body["status"] == want || tokio::time::Instant::now() >= deadline {
            return Ok((r.status, r.body));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_is_degraded_but_ready_while_redis_is_down_and_ok_again_after() -> anyhow::Result<()> {
    let redis = gad_e2e::services::ServiceUrls::get()?.redis.clone();
    let (proxy, proxied) = TcpProxy::in_front_of(&redis, 6379).await?;
    let mut app = CustomApp::new(move |iso| iso.redis.url = proxied).await?;
    app.start_ingress().await?;
    let admin = app.user(ADMIN).await?;

    let (status, body) = ready_until(&app, &admin.token, "ok").await?;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok")),
        "{body}"
    );

    proxy.set_down(true);
    let (status, body) = ready_until(&app, &admin.token, "degraded").await?;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("degraded")),
        "{body}"
    );
    assert!(
        body["checks"]["redis"].as_str().is_some_and(|c| c.starts_with("error")),
        "{body}"
    );
    assert_eq!(body["checks"]["nats"], "ok", "{body}");
    // Degraded, not down: work is still accepted.
    let r = app
        .send(Method::GET, "/api/v1/geo/nearest?lat=-34.6&lng=-58.4&k=3", &admin.token)
        .await?;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);

    proxy.set_down(false);
    let (status, body) = ready_until(&app, &admin.token, "ok").await?;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok")),
        "{body}"
    );
    proxy.stop().await;
    app.stop().await
}
