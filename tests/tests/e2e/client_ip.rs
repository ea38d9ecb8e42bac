//! Audit rows name the client (domain.md §2.1 audit_log, §6.4): the TCP
//! peer, unless the peer is a trusted proxy, whose `X-Forwarded-For` or
//! `X-Real-IP` then names it. Queued writes carry it to the worker in the
//! job envelope; direct bookkeeping (login) writes it itself.

use std::time::Duration;

use gad_e2e::tasks::ServiceTasks;
use gad_e2e::{SEED_PASSWORD, users};
use gad_ingress::client::TrustedProxy;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::custom_app::CustomApp;

const AGENT: &str = "gad-e2e-client/1.0";

fn new_user(n: u32) -> Value {
    json!({ "email": format!("ip{n}@example.org"), "password": "password-ip-long-1",
            "nombre": "Ip", "apellido": "Cliente", "dni": format!("IPC{n:05}") })
}

/// `POST /api/v1/users` waiting for the job, with extra headers; the new id.
async fn create_user(
    app: &CustomApp,
    base: &str,
    token: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> anyhow::Result<i64> {
    let mut request = app
        .client
        .post(format!("{base}/api/v1/users"))
        .bearer_auth(token)
        .header("prefer", "wait=15")
        .header("user-agent", AGENT)
        .json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    anyhow::ensure!(status == StatusCode::CREATED, "create: {status} {text}");
    let body: Value = serde_json::from_str(&text)?;
    body["id"].as_i64().ok_or_else(|| anyhow::anyhow!("no id: {text}"))
}

/// (ip, user_agent) of the one audit row of `action` on usuario `id`.
async fn audited(app: &CustomApp, action: &str, id: i64) -> anyhow::Result<(Option<String>, Option<String>)> {
    Ok(sqlx::query_as(
        "SELECT host(ip), user_agent FROM audit_log WHERE action = $1 AND resource_type = 'usuario' AND resource_id = $2",
    )
    .bind(action)
    .bind(id.to_string())
    .fetch_one(&app.db)
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_rows_carry_the_client_address_trusting_only_configured_proxies() -> anyhow::Result<()> {
    let mut app = CustomApp::new(|_| {}).await?;
    app.start_workers(|_| {}).await?;
    // One ingress trusts nobody, the other trusts the loopback proxy.
    app.start_ingress().await?;
    let direct = app.http.clone().unwrap_or_default();
    let mut proxied_tasks = ServiceTasks::new(CancellationToken::new());
    let mut settings = gad_e2e::ingress::settings(&app.iso, app.iso.nats.clone());
    settings.ingress.trusted_proxies = vec!["127.0.0.0/8".parse::<TrustedProxy>()?];
    let addr = gad_e2e::ingress::start_with(settings, Some(Duration::from_secs(10)), &mut proxied_tasks).await?;
    let proxied = format!("http://{addr}");
    let admin = app.user(users::ADMIN).await?;

    // Anyone can send X-Forwarded-For; from an untrusted peer it proves nothing.
    let id = create_user(
        &app,
        &direct,
        &admin.token,
        &new_user(1),
        &[("x-forwarded-for", "203.0.113.9")],
    )
    .await?;
    assert_eq!(
        audited(&app, "user_created", id).await?,
        (Some("127.0.0.1".into()), Some(AGENT.into()))
    );

    // Through a trusted proxy: the right-most hop the proxies did not add.
    let hops = [("x-forwarded-for", "198.51.100.1, 203.0.113.9, 127.0.0.1")];
    let id = create_user(&app, &proxied, &admin.token, &new_user(2), &hops).await?;
    assert_eq!(
        audited(&app, "user_created", id).await?,
        (Some("203.0.113.9".into()), Some(AGENT.into()))
    );

    // Direct bookkeeping (login) records the address too.
    let r = app
        .client
        .post(format!("{proxied}/api/v1/auth/login"))
        .header("x-real-ip", "192.0.2.44")
        .json(&json!({ "username": users::EFECTIVO, "password": SEED_PASSWORD }))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::OK);
    let efectivo = app.user(users::EFECTIVO).await?;
    let ip: Option<String> = sqlx::query_scalar(
        "SELECT host(ip) FROM audit_log WHERE action = 'login' AND actor_usuario_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(efectivo.id)
    .fetch_one(&app.db)
    .await?;
    assert_eq!(ip.as_deref(), Some("192.0.2.44"));

    proxied_tasks.stop().await?;
    app.stop().await
}
