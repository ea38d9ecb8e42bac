//! Authentication (domain.md §6.2, §11): login by form and JSON, the lockout,
//! logout and refresh, revocation, legacy bcrypt hashes, and the round trip
//! between the token issuer and every verifier.

use std::time::Duration;

use gad_e2e::{ApiResponse, SEED_PASSWORD, TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::error_shape::assert_error;

const WITHIN: Duration = Duration::from_secs(10);

/// A bcrypt (`$2b$`) hash of [`LEGACY_PASSWORD`], as the original system stored them.
const LEGACY_HASH: &str = "$2b$04$rRhyZ6.LJhjOQ/wWC9RU6unvAirgOh2A47mEJtrdpCmnzR1.YWTqO";
const LEGACY_PASSWORD: &str = "legacy-password-1";

/// What a request carries as its body.
pub enum Body<'a> {
    None,
    Json(&'a Value),
    Form(&'a [(&'a str, &'a str)]),
}

/// Any method, with an optional bearer token, body and extra headers.
pub async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Body<'_>,
    headers: &[(&str, &str)],
) -> anyhow::Result<ApiResponse> {
    let mut request = app.client.request(method.clone(), format!("{}{path}", app.http));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request = match body {
        Body::None => request,
        Body::Json(v) => request.json(v),
        Body::Form(fields) => request.form(fields),
    };
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(ApiResponse {
        status,
        headers,
        body,
        text,
    })
}

pub async fn post_json(app: &TestApp, path: &str, token: Option<&str>, body: &Value) -> anyhow::Result<ApiResponse> {
    send(app, Method::POST, path, token, Body::Json(body), &[]).await
}

/// Queued writes, waited for so the answer is the job's outcome.
pub async fn send_waiting(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> anyhow::Result<ApiResponse> {
    let body = body.map_or(Body::None, Body::Json);
    send(app, method, path, Some(token), body, &[("prefer", "wait=15")]).await
}

pub async fn login(app: &TestApp, email: &str, password: &str) -> anyhow::Result<ApiResponse> {
    post_json(
        app,
        "/api/v1/auth/login",
        None,
        &json!({ "username": email, "password": password }),
    )
    .await
}

/// Logs in and returns the access token, failing the test otherwise.
pub async fn token_for(app: &TestApp, email: &str, password: &str) -> anyhow::Result<String> {
    let r = login(app, email, password).await?;
    anyhow::ensure!(r.status == StatusCode::OK, "login of {email}: {} {}", r.status, r.text);
    r.body["access_token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no token: {}", r.text))
}

/// Polls `GET /api/v1/users/me` with `token` until it answers `wanted`.
pub async fn until_me_answers(app: &TestApp, token: &str, wanted: StatusCode) -> anyhow::Result<ApiResponse> {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let r = app.get("/api/v1/users/me", Some(token)).await?;
        if r.status == wanted {
            return Ok(r);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "still {} after {WITHIN:?}: {}",
            r.status,
            r.text
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The claims of a JWT, read without checking it (base64url of the middle part).
fn claims(token: &str) -> Value {
    let middle = token.split('.').nth(1).unwrap_or_default();
    serde_json::from_slice(&base64url(middle)).unwrap_or(Value::Null)
}

fn base64url(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

async fn audit_count(app: &TestApp, action: &str, usuario_id: Option<i64>) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = $1 AND ($2::bigint IS NULL OR resource_id = $2::text)",
    )
    .bind(action)
    .bind(usuario_id)
    .fetch_one(&app.db)
    .await?)
}

#[tokio::test]
async fn login_by_form_and_json_issues_tokens_every_endpoint_accepts() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let form = [("username", app.admin.email.as_str()), ("password", SEED_PASSWORD)];
    let r = send(&app, Method::POST, "/api/v1/auth/login", None, Body::Form(&form), &[]).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["token_type"], "bearer");
    assert_eq!(r.body["expires_in"], 1800);
    let token = r.body["access_token"].as_str().unwrap_or_default().to_string();

    // Exactly the §6.2 claims, as the one verifier expects them.
    let c = claims(&token);
    let mut keys: Vec<&str> = c
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    assert_eq!(keys, ["exp", "iat", "iss", "jti", "nbf", "nivel", "sub"], "{c}");
    assert_eq!(c["sub"], app.admin.id.to_string());
    assert_eq!(c["nivel"], 3);
    assert_eq!(
        c["exp"].as_i64().unwrap_or_default() - c["iat"].as_i64().unwrap_or_default(),
        1800
    );
    assert_eq!(c["nbf"], c["iat"]);

    let me = app.get("/api/v1/users/me", Some(&token)).await?;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["id"], app.admin.id);

    // Accepted everywhere a token is checked; some routes may answer 404/422, never 401.
    let id = app.admin.id;
    let protected = [
        "/api/v1/users".to_string(),
        format!("/api/v1/users/{id}"),
        "/api/v1/usuarios".to_string(),
        "/api/v1/notifications".to_string(),
        "/api/v1/admin/audit".to_string(),
        "/api/v1/tasks".to_string(),
        "/api/v1/efectivos".to_string(),
        "/api/v1/jobs".to_string(),
        format!("/api/v1/stats/user/{id}"),
        "/api/v1/geo/nearest?lat=-34.6&lng=-58.4".to_string(),
    ];
    for path in &protected {
        let r = app.get(path, Some(&token)).await?;
        assert!(
            r.status != StatusCode::UNAUTHORIZED && r.status != StatusCode::FORBIDDEN,
            "{path}: {} {}",
            r.status,
            r.text
        );
    }
    let r = post_json(&app, "/api/v1/telegram/link-code", Some(&token), &json!({})).await?;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // The same fields in JSON; the address is not case-sensitive.
    let upper = app.efectivo.email.to_uppercase();
    let r = login(&app, &upper, SEED_PASSWORD).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(claims(r.body["access_token"].as_str().unwrap_or_default())["nivel"], 1);
    assert!(audit_count(&app, "login", Some(app.efectivo.id)).await? >= 1);
    let ultimo: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT ultimo_acceso FROM usuarios WHERE id = $1")
            .bind(app.efectivo.id)
            .fetch_one(&app.db)
            .await?;
    assert!(ultimo.is_some());
    app.stop().await
}

#[tokio::test]
async fn bad_logins_all_get_the_same_401_and_bad_bodies_their_4xx() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let wrong = login(&app, &app.efectivo.email, "not-the-password").await?;
    assert_error(&wrong, StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!(wrong.header("www-authenticate"), Some("Bearer"));
    let unknown = login(&app, "nobody@seed.invalid", SEED_PASSWORD).await?;
    assert_error(&unknown, StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!(
        wrong.body["message"], unknown.body["message"],
        "the answers tell addresses apart"
    );
    assert!(audit_count(&app, "login_failed", Some(app.efectivo.id)).await? >= 1);
    assert!(audit_count(&app, "login_failed", None).await? >= 2);

    // A disabled (unverified) usuario cannot log in either.
    sqlx::query("UPDATE usuarios SET verificado = false WHERE id = $1")
        .bind(app.supervisor.id)
        .execute(&app.db)
        .await?;
    let disabled = login(&app, &app.supervisor.email, SEED_PASSWORD).await?;
    assert_error(&disabled, StatusCode::UNAUTHORIZED, "invalid_credentials");

    let missing = post_json(
        &app,
        "/api/v1/auth/login",
        None,
        &json!({ "username": app.admin.email }),
    )
    .await?;
    assert_error(&missing, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(missing.body["details"]["fields"][0]["field"], "password");
    assert_eq!(missing.body["details"]["fields"][0]["code"], "required");
    let text = app
        .client
        .post(format!("{}/api/v1/auth/login", app.http))
        .header("content-type", "text/plain")
        .body("username=a&password=b")
        .send()
        .await?;
    assert_eq!(text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    app.stop().await
}

#[tokio::test]
async fn five_failures_lock_the_account_until_it_expires_or_an_admin_unlocks_it() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let id = app.efectivo.id;
    for attempt in 1..=5 {
        let r = login(&app, &app.efectivo.email, "wrong-password").await?;
        assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
        let (fails, locked): (i32, bool) = sqlx::query_as(
            "SELECT intentos_fallidos, COALESCE(bloqueado_hasta > now(), false) FROM usuarios WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&app.db)
        .await?;
        assert_eq!((fails, locked), (attempt, attempt == 5), "after failure {attempt}");
    }
    let minutes: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM bloqueado_hasta - now())::float8 / 60 FROM usuarios WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await?;
    assert!((29.0..=30.1).contains(&minutes), "locked for {minutes} min");

    // Locked: the right password gets exactly the answer of a wrong one.
    let locked = login(&app, &app.efectivo.email, SEED_PASSWORD).await?;
    assert_error(&locked, StatusCode::UNAUTHORIZED, "invalid_credentials");

    // Only an administrator unlocks.
    let path = format!("/api/v1/users/{id}/unlock");
    for token in [&app.efectivo.token, &app.supervisor.token] {
        let r = post_json(&app, &path, Some(token), &json!({})).await?;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    }
    let r = post_json(&app, &path, Some(&app.admin.token), &json!({})).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["id"], id);
    let r = login(&app, &app.efectivo.email, SEED_PASSWORD).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // A lock that ran out gives a fresh count, and success resets it.
    sqlx::query(
        "UPDATE usuarios SET intentos_fallidos = 5, bloqueado_hasta = now() - interval '1 second' WHERE id = $1",
    )
    .bind(id)
    .execute(&app.db)
    .await?;
    let _ = login(&app, &app.efectivo.email, "wrong-password").await?;
    let fails: i32 = sqlx::query_scalar("SELECT intentos_fallidos FROM usuarios WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await?;
    assert_eq!(fails, 1);
    assert_eq!(
        login(&app, &app.efectivo.email, SEED_PASSWORD).await?.status,
        StatusCode::OK
    );
    let fails: i32 = sqlx::query_scalar("SELECT intentos_fallidos FROM usuarios WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await?;
    assert_eq!(fails, 0);
    app.stop().await
}

#[tokio::test]
async fn logout_revokes_that_token_and_refresh_issues_a_fresh_one() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let first = token_for(&app, &app.efectivo.email, SEED_PASSWORD).await?;
    let second = token_for(&app, &app.efectivo.email, SEED_PASSWORD).await?;

    let refreshed = post_json(&app, "/api/v1/auth/refresh", Some(&first), &json!({})).await?;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
    assert_eq!(refreshed.body["token_type"], "bearer");
    let fresh = refreshed.body["access_token"].as_str().unwrap_or_default().to_string();
    assert_ne!(fresh, first);
    assert_eq!(claims(&fresh)["sub"], app.efectivo.id.to_string());
    assert_ne!(claims(&fresh)["jti"], claims(&first)["jti"]);

    let out = post_json(&app, "/api/v1/auth/logout", Some(&first), &json!({})).await?;
    assert_eq!(out.status, StatusCode::OK, "{}", out.text);
    assert_eq!(out.body, json!({ "status": "logged_out" }));
    let r = until_me_answers(&app, &first, StatusCode::UNAUTHORIZED).await?;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_token");
    let r = post_json(&app, "/api/v1/auth/refresh", Some(&first), &json!({})).await?;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_token");
    // Only that token: the usuario's other sessions go on.
    for other in [&second, &fresh] {
        assert_eq!(app.get("/api/v1/users/me", Some(other)).await?.status, StatusCode::OK);
    }
    assert!(audit_count(&app, "logout", Some(app.efectivo.id)).await? >= 1);

    let anonymous = post_json(&app, "/api/v1/auth/logout", None, &json!({})).await?;
    assert_error(&anonymous, StatusCode::UNAUTHORIZED, "not_authenticated");
    app.stop().await
}

#[tokio::test]
async fn a_nivel_change_revokes_earlier_tokens_and_the_next_login_has_the_new_nivel() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let id = app.supervisor.id;
    let old = app.supervisor.token.clone();
    assert_eq!(app.get("/api/v1/users", Some(&old)).await?.status, StatusCode::OK);

    let r = send_waiting(
        &app,
        Method::PUT,
        &format!("/api/v1/users/{id}"),
        &app.admin.token,
        Some(&json!({ "nivel": 1 })),
    )
    .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["nivel"], 1);
    let r = until_me_answers(&app, &old, StatusCode::UNAUTHORIZED).await?;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_token");

    // A login right after the change is not born revoked, and carries nivel 1.
    let new = token_for(&app, &app.supervisor.email, SEED_PASSWORD).await?;
    assert_eq!(claims(&new)["nivel"], 1);
    assert_eq!(app.get("/api/v1/users/me", Some(&new)).await?.status, StatusCode::OK);
    assert_error(
        &app.get("/api/v1/users", Some(&new)).await?,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(audit_count(&app, "role_changed", Some(id)).await?, 1);
    app.stop().await
}

#[tokio::test]
async fn a_legacy_bcrypt_hash_logs_in_and_is_rehashed_to_argon2id() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let id = app.efectivo.id;
    sqlx::query("UPDATE usuarios SET hashed_password = $2 WHERE id = $1")
        .bind(id)
        .bind(LEGACY_HASH)
        .execute(&app.db)
        .await?;
    assert_error(
        &login(&app, &app.efectivo.email, SEED_PASSWORD).await?,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    token_for(&app, &app.efectivo.email, LEGACY_PASSWORD).await?;
    let stored: String = sqlx::query_scalar("SELECT hashed_password FROM usuarios WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await?;
    assert!(stored.starts_with("$argon2id$"), "not rehashed: {stored}");
    token_for(&app, &app.efectivo.email, LEGACY_PASSWORD).await?;
    app.stop().await
}
