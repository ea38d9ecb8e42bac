//! Every endpoint speaks JSON and MessagePack alike; every answer carries
//! the security headers; CORS only for the configured origins.

use std::time::Duration;

use gad_e2e::{SEED_PASSWORD, spawn_app, users};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::custom_app::CustomApp;

const MSGPACK: &str = "application/msgpack";

async fn decode(r: reqwest::Response) -> anyhow::Result<(StatusCode, String, Value)> {
    let status = r.status();
    let ct = r
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = r.bytes().await?;
    let value = if ct.starts_with(MSGPACK) {
        rmp_serde::from_slice(&bytes)?
    } else {
        serde_json::from_slice(&bytes)?
    };
    Ok((status, ct, value))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messagepack_and_json_give_the_same_answers() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let url = format!("{}/api/v1/geo/nearest?lat=-34.6&lng=-58.4&k=3", app.http);
    let ask = |accept: &'static str| {
        app.client
            .get(&url)
            .bearer_auth(&app.supervisor.token)
            .header("prefer", "wait=10")
            .header(ACCEPT, accept)
            .send()
    };
    let (s1, ct1, as_json) = decode(ask("application/json").await?).await?;
    let (s2, ct2, as_msgpack) = decode(ask(MSGPACK).await?).await?;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert!(ct1.starts_with("application/json"), "{ct1}");
    assert_eq!(ct2, MSGPACK);
    assert_eq!(as_json, as_msgpack);

    // A MessagePack request body, answered in MessagePack.
    let login = json!({ "username": users::SUPERVISOR, "password": SEED_PASSWORD });
    let r = app
        .client
        .post(format!("{}/api/v1/auth/login", app.http))
        .header(CONTENT_TYPE, MSGPACK)
        .header(ACCEPT, MSGPACK)
        .body(rmp_serde::to_vec_named(&login)?)
        .send()
        .await?;
    let (status, ct, body) = decode(r).await?;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, MSGPACK), "{body}");
    assert!(body["access_token"].is_string(), "{body}");

    // Errors keep their shape in either encoding.
    let r = app
        .client
        .get(format!("{}/api/v1/nothing-here", app.http))
        .header(ACCEPT, MSGPACK)
        .send()
        .await?;
    let (status, _, body) = decode(r).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
    assert!(body["request_id"].is_string());

    // A body that is not MessagePack: 400, nothing else happens.
    let r = app
        .client
        .post(format!("{}/api/v1/auth/login", app.http))
        .header(CONTENT_TYPE, MSGPACK)
        .body(vec![0xc1u8, 0x00])
        .send()
        .await?;
    let (status, _, body) = decode(r).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "bad_request");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_carry_security_headers_and_cors_only_for_listed_origins() -> anyhow::Result<()> {
    let app = CustomApp::new(|_| {}).await?;
    let mut tasks = gad_e2e::tasks::ServiceTasks::new(CancellationToken::new());
    let mut settings = gad_e2e::ingress::settings(&app.iso, app.iso.nats.clone());
    settings.ingress.cors_allowed_origins = vec!["https://board.example.org".into()];
    let addr = gad_e2e::ingress::start_with(settings, Some(Duration::from_secs(10)), &mut tasks).await?;
    let base = format!("http://{addr}");

    let r = app.client.get(format!("{base}/api/v1/jobs/not-a-uuid")).send().await?;
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(
            r.headers().get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{name}"
        );
    }
    assert!(r.headers().contains_key("x-request-id"));

    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{base}/api/v1/tasks"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
    };
    let allowed = preflight("https://board.example.org").await?;
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://board.example.org"
    );
    assert_eq!(allowed.headers()["access-control-allow-credentials"], "true");
    let other = preflight("https://evil.example.com").await?;
    assert!(!other.headers().contains_key("access-control-allow-origin"));
    tasks.stop().await?;
    app.stop().await
}
