//! Usuarios, preferences, notifications, Telegram linking and the audit log
//! (domain.md §6.3, §7, §9.1): the role matrix, validation, duplicates,
//! soft delete, and passwords that never reach a job record.

use std::time::Duration;

use gad_e2e::{ApiResponse, SEED_PASSWORD, TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::auth::{Body, login, post_json, send, send_waiting, token_for, until_me_answers};
use crate::error_shape::assert_error;

const JOB_WITHIN: Duration = Duration::from_secs(15);

fn new_user(n: u32) -> Value {
    json!({
        "email": format!("nuevo{n}@example.org"),
        "password": format!("password-{n}-long"),
        "nombre": "Nueva",
        "apellido": "Persona",
        "dni": format!("DNI-{n:06}"),
        "telefono": "+54 11 5555-0000",
    })
}

/// Creates a usuario as the admin (waiting) and returns its id.
async fn create_user(app: &TestApp, body: &Value) -> anyhow::Result<i64> {
    let r = send_waiting(app, Method::POST, "/api/v1/users", &app.admin.token, Some(body)).await?;
    anyhow::ensure!(r.status == StatusCode::CREATED, "create: {} {}", r.status, r.text);
    r.body["id"]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("no id: {}", r.text))
}

fn field_codes(r: &ApiResponse) -> Vec<(String, String)> {
    let mut codes: Vec<(String, String)> = r.body["details"]["fields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .map(|f| {
                    (
                        f["field"].as_str().unwrap_or("").to_string(),
                        f["code"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    codes.sort();
    codes
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<_> = expected.iter().map(|(f, c)| (f.to_string(), c.to_string())).collect();
    v.sort();
    v
}

#[tokio::test]
async fn create_answers_the_usuario_and_duplicates_are_409_with_the_field() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let body = new_user(1);
    let r = send_waiting(&app, Method::POST, "/api/v1/users", &app.admin.token, Some(&body)).await?;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let mut keys: Vec<&str> = r
        .body
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "apellido",
            "created_at",
            "dni",
            "email",
            "id",
            "nivel",
            "nombre",
            "telefono",
            "telegram_id",
            "telegram_vinculado",
            "uuid",
            "verificado"
        ]
    );
    assert_eq!(r.body["nivel"], 1);
    assert_eq!(r.body["verificado"], true);
    assert_eq!(r.body["telegram_vinculado"], false);
    let created_at = r.body["created_at"].as_str().unwrap_or_default();
    assert!(created_at.ends_with('Z') && created_at.len() == 24, "{created_at}");
    let id = r.body["id"].as_i64().unwrap_or_default();

    // The new usuario can log in at once (verificado defaults to true).
    token_for(&app, "nuevo1@example.org", "password-1-long").await?;
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'user_created' AND resource_id = $1 AND actor_usuario_id = $2",
    )
    .bind(id.to_string())
    .bind(app.admin.id)
    .fetch_one(&app.db)
    .await?;
    assert_eq!(audited, 1);

    let mut same_email = new_user(2);
    same_email["email"] = json!("NUEVO1@example.org");
    let r = send_waiting(&app, Method::POST, "/api/v1/users", &app.admin.token, Some(&same_email)).await?;
    assert_error(&r, StatusCode::CONFLICT, "duplicate");
    assert_eq!(r.body["details"]["field"], "email", "{}", r.text);
    let mut same_dni = new_user(3);
    same_dni["dni"] = body["dni"].clone();
    let r = send_waiting(
        &app,
        Method::POST,
        "/api/v1/usuarios",
        &app.admin.token,
        Some(&same_dni),
    )
    .await?;
    assert_error(&r, StatusCode::CONFLICT, "duplicate");
    assert_eq!(r.body["details"]["field"], "dni", "{}", r.text);

    // An update onto another usuario's address is a duplicate too.
    let other = create_user(&app, &new_user(4)).await?;
    let r = send_waiting(
        &app,
        Method::PUT,
        &format!("/api/v1/users/{other}"),
        &app.admin.token,
        Some(&json!({ "email": "nuevo1@example.org" })),
    )
    .await?;
    assert_error(&r, StatusCode::CONFLICT, "duplicate");
    assert_eq!(r.body["details"]["field"], "email");
    app.stop().await
}

#[tokio::test]
async fn usuario_fields_are_validated_all_at_once() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let admin = &app.admin.token;
    let bad = json!({
        "email": "not-an-address", "password": "short", "nombre": " A ", "apellido": "Ok",
        "dni": "12 34", "telefono": "call me", "nivel": 4,
    });
    let r = post_json(&app, "/api/v1/users", Some(admin), &bad).await?;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        field_codes(&r),
        pairs(&[
            ("email", "invalid_format"),
            ("password", "invalid_length"),
            ("nombre", "invalid_length"),
            ("dni", "invalid_format"),
            ("telefono", "invalid_format"),
            ("nivel", "out_of_range"),
        ])
    );

    let r = post_json(&app, "/api/v1/users", Some(admin), &json!({})).await?;
    assert_eq!(
        field_codes(&r),
        pairs(&[
            ("email", "required"),
            ("password", "required"),
            ("nombre", "required"),
            ("apellido", "required"),
            ("dni", "required"),
        ])
    );

    let mut edge = new_user(1);
    edge["password"] = json!("x".repeat(129));
    edge["dni"] = json!("1234");
    edge["email"] = json!(format!("{}@example.org", "a".repeat(250)));
    edge["apellido"] = json!("n".repeat(101));
    let r = post_json(&app, "/api/v1/users", Some(admin), &edge).await?;
    assert_eq!(
        field_codes(&r),
        pairs(&[
            ("password", "invalid_length"),
            ("dni", "invalid_format"),
            ("email", "invalid_length"),
            ("apellido", "invalid_length"),
        ])
    );

    // The limits themselves are valid: 8 and 128 characters, 5 and 20 for dni.
    let mut limits = new_user(2);
    limits["password"] = json!("p".repeat(8));
    limits["dni"] = json!("12345");
    create_user(&app, &limits).await?;
    let mut limits = new_user(3);
    limits["password"] = json!("p".repeat(128));
    limits["dni"] = json!("A".repeat(20));
    limits["telefono"] = json!("123456");
    create_user(&app, &limits).await?;

    let r = send(
        &app,
        Method::PUT,
        &format!("/api/v1/users/{}", app.efectivo.id),
        Some(admin),
        Body::Json(&json!({ "nivel": 0, "telefono": "12", "verificado": "yes" })),
        &[],
    )
    .await?;
    assert_eq!(
        field_codes(&r),
        pairs(&[
            ("nivel", "out_of_range"),
            ("telefono", "invalid_format"),
            ("verificado", "invalid_type")
        ])
    );
    app.stop().await
}

/// (caller nivel, expected status) for one request.
struct Case {
    what: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
    expect: [StatusCode; 3],
}

#[tokio::test]
async fn the_role_matrix_of_usuario_endpoints() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let other = create_user(&app, &new_user(1)).await?;
    let callers = [&app.efectivo, &app.supervisor, &app.admin];
    use StatusCode as S;
    let cases = |me: i64| {
        vec![
            Case {
                what: "get self",
                method: Method::GET,
                path: format!("/api/v1/users/{me}"),
                body: None,
                expect: [S::OK; 3],
            },
            Case {
                what: "get me",
                method: Method::GET,
                path: "/api/v1/users/me".into(),
                body: None,
                expect: [S::OK; 3],
            },
            Case {
                what: "get other",
                method: Method::GET,
                path: format!("/api/v1/users/{other}"),
                body: None,
                expect: [S::FORBIDDEN, S::OK, S::OK],
            },
            Case {
                what: "list",
                method: Method::GET,
                path: "/api/v1/users".into(),
                body: None,
                expect: [S::FORBIDDEN, S::OK, S::OK],
            },
            Case {
                what: "alias list",
                method: Method::GET,
                path: "/api/v1/usuarios".into(),
                body: None,
                expect: [S::FORBIDDEN, S::OK, S::OK],
            },
            Case {
                what: "update self",
                method: Method::PUT,
                path: format!("/api/v1/users/{me}"),
                body: Some(json!({ "telefono": "+54 11 4000-0000" })),
                expect: [S::OK; 3],
            },
            Case {
                what: "update self nivel",
                method: Method::PUT,
                path: format!("/api/v1/users/{me}"),
                body: Some(json!({ "nivel": 3 })),
                expect: [S::FORBIDDEN, S::FORBIDDEN, S::OK],
            },
            Case {
                what: "update self verificado",
                method: Method::PUT,
                path: format!("/api/v1/usuarios/{me}"),
                body: Some(json!({ "verificado": true })),
                expect: [S::FORBIDDEN, S::FORBIDDEN, S::OK],
            },
            Case {
                what: "update other",
                method: Method::PUT,
                path: format!("/api/v1/users/{other}"),
                body: Some(json!({ "nombre": "Otra" })),
                expect: [S::FORBIDDEN, S::FORBIDDEN, S::OK],
            },
            Case {
                what: "create",
                method: Method::POST,
                path: "/api/v1/users".into(),
                body: Some(new_user(me as u32 + 100)),
                expect: [S::FORBIDDEN, S::FORBIDDEN, S::CREATED],
            },
            Case {
                what: "unlock other",
                method: Method::POST,
                path: format!("/api/v1/users/{other}/unlock"),
                body: Some(json!({})),
                expect: [S::FORBIDDEN, S::FORBIDDEN, S::OK],
            },
            Case {
                what: "preferences",
                method: Method::PUT,
                path: "/api/v1/users/me/preferences".into(),
                body: Some(json!({ "notif_supervision": true })),
                expect: [S::OK; 3],
            },
            Case {
                what: "notifications",
                method: Method::GET,
                path: "/api/v1/notifications".into(),
                body: None,
                expect: [S::OK; 3],
            },
            Case {
                what: "link code",
                method: Method::POST,
                path: "/api/v1/telegram/link-code".into(),
                body: Some(json!({})),
                expect: [S::CREATED; 3],
            },
            Case {
                what: "unlink self",
                method: Method::DELETE,
                path: "/api/v1/telegram/link".into(),
                body: None,
                expect: [S::OK; 3],
            },
            Case {
                what: "unlink self by id",
                method: Method::DELETE,
                path: format!("/api/v1/telegram/link/{me}"),
                body: None,
                expect: [S::OK; 3],
            },
            Case {
                what: "unlink other",
                method: Method::DELETE,
                path: format!("/api/v1/telegram/link/{other}"),
                body: None,
                expect: [S::FORBIDDEN, S::FORBIDDEN, S::OK],
            },
            Case {
                what: "audit",
                method: Method::GET,
                path: "/api/v1/admin/audit".into(),
                body: None,
                expect: [S::FORBIDDEN, S::FORBIDDEN, S::OK],
            },
            Case {
                what: "delete other",
                method: Method::DELETE,
                path: format!("/api/v1/users/{other}"),
                body: None,
                expect: [S::FORBIDDEN, S::FORBIDDEN, S::OK],
            },
        ]
    };
    for (i, caller) in callers.iter().enumerate() {
        for case in cases(caller.id) {
            let r = send_waiting(&app, case.method.clone(), &case.path, &caller.token, case.body.as_ref()).await?;
            assert_eq!(
                r.status, case.expect[i],
                "nivel {} {}: {} {}",
                caller.nivel, case.what, case.path, r.text
            );
            if r.status == StatusCode::FORBIDDEN {
                assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
            }
        }
    }
    // Anonymous callers get 401 everywhere.
    for path in [
        "/api/v1/users",
        "/api/v1/users/me",
        "/api/v1/notifications",
        "/api/v1/admin/audit",
    ] {
        assert_error(
            &app.get(path, None).await?,
            StatusCode::UNAUTHORIZED,
            "not_authenticated",
        );
    }
    // Without `Prefer`, the queued-only routes answer 202.
    let r = send(
        &app,
        Method::DELETE,
        "/api/v1/telegram/link",
        Some(&app.efectivo.token),
        Body::None,
        &[],
    )
    .await?;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    app.stop().await
}

#[tokio::test]
async fn self_service_is_limited_and_a_password_change_needs_the_current_one() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let me = format!("/api/v1/users/{}", app.efectivo.id);
    let token = app.efectivo.token.clone();
    let r = send_waiting(
        &app,
        Method::PUT,
        &me,
        &token,
        Some(&json!({ "nombre": "  Renombrada ", "telefono": null })),
    )
    .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["nombre"], "Renombrada");
    assert_eq!(r.body["telefono"], Value::Null);
    for forbidden in [
        json!({ "email": "x@example.org" }),
        json!({ "dni": "99999999" }),
        json!({ "nivel": 1 }),
    ] {
        assert_error(
            &send_waiting(&app, Method::PUT, &me, &token, Some(&forbidden)).await?,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }

    let r = send_waiting(
        &app,
        Method::PUT,
        &me,
        &token,
        Some(&json!({ "password": "brand-new-pass" })),
    )
    .await?;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(field_codes(&r), pairs(&[("current_password", "required")]));
    let wrong = json!({ "password": "brand-new-pass", "current_password": "not-it-at-all" });
    let r = send_waiting(&app, Method::PUT, &me, &token, Some(&wrong)).await?;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(field_codes(&r), pairs(&[("current_password", "incorrect")]));

    let right = json!({ "password": "brand-new-pass", "current_password": SEED_PASSWORD });
    let r = send_waiting(&app, Method::PUT, &me, &token, Some(&right)).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let job_id = r.header("x-job-id").unwrap_or_default().to_string();
    // The change ends every earlier token, this one included.
    until_me_answers(&app, &token, StatusCode::UNAUTHORIZED).await?;
    assert_error(
        &login(&app, &app.efectivo.email, SEED_PASSWORD).await?,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    let new_token = token_for(&app, &app.efectivo.email, "brand-new-pass").await?;

    // Neither password reaches the job as shown, nor its row, nor the audit log.
    let job = app.get(&format!("/api/v1/jobs/{job_id}"), Some(&new_token)).await?;
    assert_eq!(job.status, StatusCode::OK, "{}", job.text);
    assert_eq!(job.body["status"], "succeeded");
    for secret in ["brand-new-pass", SEED_PASSWORD] {
        assert!(!job.text.contains(secret), "{secret} in {}", job.text);
    }
    assert_no_secret_stored(&app, &["brand-new-pass", SEED_PASSWORD]).await?;
    app.stop().await
}

/// No row of `jobs` or `audit_log` holds any of `secrets`.
async fn assert_no_secret_stored(app: &TestApp, secrets: &[&str]) -> anyhow::Result<()> {
    for secret in secrets {
        let pattern = format!("%{secret}%");
        let (jobs, audits): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM jobs WHERE payload_summary::text LIKE $1 OR COALESCE(result::text, '') LIKE $1
                                                OR COALESCE(error::text, '') LIKE $1),
                    (SELECT count(*) FROM audit_log WHERE COALESCE(before::text, '') LIKE $1 OR COALESCE(after::text, '') LIKE $1)",
        )
        .bind(&pattern)
        .fetch_one(&app.db)
        .await?;
        assert_eq!((jobs, audits), (0, 0), "{secret} stored in jobs/audit_log");
    }
    Ok(())
}

#[tokio::test]
async fn the_password_of_a_created_usuario_never_appears_on_its_job() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let body = new_user(7);
    let secret = body["password"].as_str().unwrap_or_default().to_string();
    let r = send(
        &app,
        Method::POST,
        "/api/v1/users",
        Some(&app.admin.token),
        Body::Json(&body),
        &[("prefer", "respond-async")],
    )
    .await?;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let job_id = r.body["job_id"].as_str().unwrap_or_default().to_string();
    // Seen while queued (the fast status) and once finished (the row).
    let queued = app
        .get(&format!("/api/v1/jobs/{job_id}"), Some(&app.admin.token))
        .await?;
    assert!(!queued.text.contains(&secret), "{}", queued.text);
    let done = app.wait_for_job(&job_id, &app.admin.token, JOB_WITHIN).await?;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["kind"], "user.create");
    assert_eq!(done["payload_summary"]["email"], "nuevo7@example.org");
    assert!(!done.to_string().contains(&secret), "{done}");
    assert_no_secret_stored(&app, &[&secret]).await?;
    token_for(&app, "nuevo7@example.org", &secret).await?;
    app.stop().await
}

#[tokio::test]
async fn delete_is_soft_and_ends_the_usuarios_tokens() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let id = create_user(&app, &new_user(1)).await?;
    let token = token_for(&app, "nuevo1@example.org", "password-1-long").await?;
    let r = send(
        &app,
        Method::DELETE,
        &format!("/api/v1/users/{id}"),
        Some(&app.admin.token),
        Body::None,
        &[],
    )
    .await?;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let job = app
        .wait_for_job(
            r.body["job_id"].as_str().unwrap_or_default(),
            &app.admin.token,
            JOB_WITHIN,
        )
        .await?;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"]["http_status"], 200);
    assert_eq!(job["result"]["body"]["id"], id);

    until_me_answers(&app, &token, StatusCode::UNAUTHORIZED).await?;
    assert_error(
        &app.get(&format!("/api/v1/users/{id}"), Some(&app.admin.token)).await?,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let listed = app
        .get("/api/v1/users?q=nuevo1%40example.org", Some(&app.admin.token))
        .await?;
    assert_eq!(listed.body, json!([]));
    assert_error(
        &login(&app, "nuevo1@example.org", "password-1-long").await?,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    let deleted: bool = sqlx::query_scalar("SELECT deleted_at IS NOT NULL FROM usuarios WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await?;
    assert!(deleted, "the row is kept, marked deleted");
    // Deleting again finds nothing.
    let r = send_waiting(
        &app,
        Method::DELETE,
        &format!("/api/v1/users/{id}"),
        &app.admin.token,
        None,
    )
    .await?;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log WHERE resource_id = $1 ORDER BY id")
        .bind(id.to_string())
        .fetch_all(&app.db)
        .await?;
    assert!(actions.contains(&"user_disabled".to_string()), "{actions:?}");

    // Disabling (verificado = false) ends the tokens the same way.
    let r = send_waiting(
        &app,
        Method::PUT,
        &format!("/api/v1/users/{}", app.efectivo.id),
        &app.admin.token,
        Some(&json!({ "verificado": false })),
    )
    .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    until_me_answers(&app, &app.efectivo.token, StatusCode::UNAUTHORIZED).await?;
    app.stop().await
}

#[tokio::test]
async fn the_list_filters_searches_and_paginates_by_id() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let token = &app.supervisor.token;
    let expected: i64 = sqlx::query_scalar("SELECT count(*) FROM usuarios WHERE nivel = 2 AND deleted_at IS NULL")
        .fetch_one(&app.db)
        .await?;
    let r = app.get("/api/v1/users?nivel=2&limit=5", Some(token)).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.header("x-total-count"), Some(expected.to_string().as_str()));
    let items = r.body.as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 5);
    assert!(items.iter().all(|u| u["nivel"] == 2));
    let ids: Vec<i64> = items.iter().map(|u| u["id"].as_i64().unwrap_or_default()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let next = app.get("/api/v1/users?nivel=2&limit=5&skip=5", Some(token)).await?;
    assert!(next.body[0]["id"].as_i64().unwrap_or_default() > ids[4]);

    let r = app.get("/api/v1/usuarios?q=SUPERVISOR1%40seed", Some(token)).await?;
    let emails: Vec<&str> = r
        .body
        .as_array()
        .map(|a| a.iter().filter_map(|u| u["email"].as_str()).collect())
        .unwrap_or_default();
    assert!(emails.contains(&"supervisor1@seed.invalid"), "{emails:?}");
    let r = app.get("/api/v1/users?q=100%25_", Some(token)).await?;
    assert_eq!(r.body, json!([]), "% and _ are literal");
    assert_eq!(r.header("x-total-count"), Some("0"));

    let r = app.get("/api/v1/users?limit=0&skip=-1&nivel=4", Some(token)).await?;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        field_codes(&r),
        pairs(&[
            ("limit", "out_of_range"),
            ("skip", "out_of_range"),
            ("nivel", "out_of_range")
        ])
    );
    let r = app.get("/api/v1/users/not-a-number", Some(token)).await?;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    app.stop().await
}

#[tokio::test]
async fn preferences_and_own_notifications_with_acknowledgement() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let token = &app.supervisor.token;
    let r = send(
        &app,
        Method::PUT,
        "/api/v1/users/me/preferences",
        Some(token),
        Body::Json(&json!({ "notif_supervision": false })),
        &[],
    )
    .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!({ "notif_supervision": false }));
    let stored: Value = sqlx::query_scalar("SELECT extra_data FROM usuarios WHERE id = $1")
        .bind(app.supervisor.id)
        .fetch_one(&app.db)
        .await?;
    assert_eq!(stored["notif_supervision"], false);
    let r = send(
        &app,
        Method::PUT,
        "/api/v1/users/me/preferences",
        Some(token),
        Body::Json(&json!({ "notif_supervision": "no" })),
        &[],
    )
    .await?;
    assert_eq!(field_codes(&r), pairs(&[("notif_supervision", "invalid_type")]));

    // Two notifications for the supervisor (one on both channels), one for someone else.
    let older = uuid::Uuid::now_v7();
    let newer = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO notifications (event_id, recipient_usuario_id, channel, kind, priority, payload, created_at) VALUES
           ($1, $3, 'websocket', 'urgent_task', 1, '{\"title\": \"old\"}', now() - interval '1 minute'),
           ($2, $3, 'websocket', 'ack_timeout', 0, '{\"title\": \"new\"}', now()),
           ($2, $3, 'telegram', 'ack_timeout', 0, '{\"title\": \"new\"}', now()),
           ($2, $4, 'websocket', 'ack_timeout', 0, '{\"title\": \"theirs\"}', now())",
    )
    .bind(older)
    .bind(newer)
    .bind(app.supervisor.id)
    .bind(app.admin.id)
    .execute(&app.db)
    .await?;
    let r = app.get("/api/v1/notifications", Some(token)).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.header("x-total-count"), Some("2"));
    let items = r.body.as_array().cloned().unwrap_or_default();
    let events: Vec<&str> = items.iter().filter_map(|n| n["event_id"].as_str()).collect();
    assert_eq!(
        events,
        [newer.to_string(), older.to_string()],
        "one per notification, newest first"
    );
    assert!(items.iter().all(|n| n["acked_at"].is_null()));

    let id = items[0]["id"].as_str().unwrap_or_default().to_string();
    let theirs = send(
        &app,
        Method::POST,
        &format!("/api/v1/notifications/{id}/ack"),
        Some(&app.efectivo.token),
        Body::None,
        &[],
    )
    .await?;
    assert_error(&theirs, StatusCode::NOT_FOUND, "not_found");
    let r = send(
        &app,
        Method::POST,
        &format!("/api/v1/notifications/{id}/ack"),
        Some(token),
        Body::None,
        &[],
    )
    .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["acked_at"].is_string(), "{}", r.text);
    // Every channel's row of that notification is acknowledged, nobody else's.
    let acked: Vec<(String, i64)> = sqlx::query_as(
        "SELECT channel, recipient_usuario_id FROM notifications WHERE event_id = $1 AND acked_at IS NOT NULL ORDER BY channel",
    )
    .bind(newer)
    .fetch_all(&app.db)
    .await?;
    assert_eq!(
        acked,
        [
            ("telegram".to_string(), app.supervisor.id),
            ("websocket".to_string(), app.supervisor.id)
        ]
    );
    let r = app.get("/api/v1/notifications?unacked_only=true", Some(token)).await?;
    assert_eq!(r.body.as_array().map(Vec::len), Some(1));
    assert_eq!(r.body[0]["event_id"], older.to_string());
    let r = app.get("/api/v1/notifications?limit=1&skip=1", Some(token)).await?;
    assert_eq!(r.body[0]["event_id"], older.to_string());
    app.stop().await
}

#[tokio::test]
async fn link_codes_are_single_current_and_hashed_and_unlink_clears_the_link() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let token = &app.efectivo.token;
    let first = post_json(&app, "/api/v1/telegram/link-code", Some(token), &json!({})).await?;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let code = first.body["code"].as_str().unwrap_or_default().to_string();
    assert!(code.len() >= 16, "{code}");
    assert_eq!(first.body["deep_link"], format!("https://t.me/gad_bot?start={code}"));
    let expires = chrono::DateTime::parse_from_rfc3339(first.body["expires_at"].as_str().unwrap_or_default())?;
    let minutes = (expires.to_utc() - chrono::Utc::now()).num_seconds() as f64 / 60.0;
    assert!((9.0..=10.1).contains(&minutes), "expires in {minutes} min");

    let second = post_json(&app, "/api/v1/telegram/link-code", Some(token), &json!({})).await?;
    let code2 = second.body["code"].as_str().unwrap_or_default().to_string();
    assert_ne!(code, code2);
    // Only hashes are stored, and the earlier code no longer works.
    let rows: Vec<(bool, bool)> = sqlx::query_as(
        "SELECT code_hash = sha256(convert_to($2, 'UTF8')), expires_at > now() FROM telegram_links
          WHERE usuario_id = $1 ORDER BY created_at, expires_at",
    )
    .bind(app.efectivo.id)
    .bind(&code2)
    .fetch_all(&app.db)
    .await?;
    assert_eq!(rows, [(false, false), (true, true)]);
    let plain: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM telegram_links WHERE position(convert_to($1, 'UTF8') in code_hash) > 0",
    )
    .bind(&code2)
    .fetch_one(&app.db)
    .await?;
    assert_eq!(plain, 0);

    sqlx::query("UPDATE usuarios SET telegram_id = 987654321 WHERE id = $1")
        .bind(app.efectivo.id)
        .execute(&app.db)
        .await?;
    let me = app.get("/api/v1/users/me", Some(token)).await?;
    assert_eq!(
        (me.body["telegram_id"].clone(), me.body["telegram_vinculado"].clone()),
        (json!(987654321), json!(true))
    );
    let r = send_waiting(&app, Method::DELETE, "/api/v1/telegram/link", token, None).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["telegram_vinculado"], false);
    assert_eq!(r.body["telegram_id"], Value::Null);
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'telegram_unlinked' AND resource_id = $1")
            .bind(app.efectivo.id.to_string())
            .fetch_one(&app.db)
            .await?;
    assert_eq!(audited, 1);
    app.stop().await
}

#[tokio::test]
async fn the_audit_log_filters_newest_first_and_legacy_telegram_routes_are_gone() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let a = create_user(&app, &new_user(1)).await?;
    let b = create_user(&app, &new_user(2)).await?;
    let r = app
        .get(
            "/api/v1/admin/audit?action=user_created&resource_type=usuario",
            Some(&app.admin.token),
        )
        .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let ids: Vec<&str> = r
        .body
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["resource_id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, [b.to_string(), a.to_string()], "newest first");
    assert_eq!(r.header("x-total-count"), Some("2"));
    let entry = &r.body[0];
    assert_eq!(entry["actor_usuario_id"], app.admin.id);
    assert!(
        entry["job_id"].is_string() && entry["occurred_at"].is_string(),
        "{entry}"
    );
    assert_eq!(entry["after"]["email"], "nuevo2@example.org");

    let one = app
        .get(
            &format!("/api/v1/admin/audit?resource_id={a}&actor={}", app.admin.id),
            Some(&app.admin.token),
        )
        .await?;
    assert_eq!(one.body.as_array().map(Vec::len), Some(1), "{}", one.text);
    let later = app
        .get("/api/v1/admin/audit?desde=2999-01-01T00:00:00Z", Some(&app.admin.token))
        .await?;
    assert_eq!(later.body, json!([]));
    let naive = app
        .get("/api/v1/admin/audit?desde=2026-01-01T00:00:00", Some(&app.admin.token))
        .await?;
    assert_error(&naive, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(field_codes(&naive), pairs(&[("desde", "naive_timestamp")]));

    for (method, path) in [
        (Method::POST, "/api/v1/telegram/auth/token"),
        (Method::GET, "/api/v1/telegram/auth/login/123"),
        (Method::GET, "/api/v1/telegram/tasks"),
        (Method::POST, "/api/v1/telegram/tasks/42/finish"),
        (Method::DELETE, "/api/v1/telegram/tasks/42/"),
    ] {
        let r = send(&app, method.clone(), path, None, Body::None, &[]).await?;
        assert_error(&r, StatusCode::GONE, "endpoint_removed");
    }
    app.stop().await
}
