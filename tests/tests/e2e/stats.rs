//! Per-usuario stats (domain.md §6.3): the figures against a direct count,
//! the Redis cache (a hit on the second call, a miss after a task event or an
//! invalidation), live figures while Redis is down, and the role rules.
//!
//! Redis is shared by every test, and every test database holds the same
//! seeded ids, so each test here uses its own `days` (part of the cache key)
//! and invalidates its usuario before relying on the cache.

use std::time::Duration;

use gad_e2e::{ApiResponse, TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::auth::{Body, send, send_waiting};
use crate::custom_app::CustomApp;
use crate::error_shape::assert_error;

const WITHIN: Duration = Duration::from_secs(15);

const STATS_KEYS: [&str; 13] = [
    "_cache",
    "calculated_at",
    "canceladas",
    "completadas",
    "en_progreso",
    "estados",
    "pausadas",
    "period_days",
    "productividad_diaria",
    "programadas",
    "promedio_duracion_horas",
    "total",
    "user_id",
];

/// What the spec says the figures are, written independently of the service's SQL.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Expected {
    total: i64,
    programada: i64,
    en_curso: i64,
    pausada: i64,
    finalizada: i64,
    cancelada: i64,
    promedio: f64,
}

async fn expected(db: &PgPool, user_id: i64, days: i32) -> anyhow::Result<Expected> {
    let row: (i64, i64, i64, i64, i64, i64, Option<f64>) = sqlx::query_as(
        "SELECT count(*),
                count(*) FILTER (WHERE estado = 'programada'), count(*) FILTER (WHERE estado = 'en_curso'),
                count(*) FILTER (WHERE estado = 'pausada'), count(*) FILTER (WHERE estado = 'finalizada'),
                count(*) FILTER (WHERE estado = 'cancelada'),
                (avg(duracion_real_horas) FILTER (WHERE estado = 'finalizada'))::float8
         FROM tareas t
         WHERE t.deleted_at IS NULL AND t.created_at >= now() - $2 * interval '1 day'
           AND (t.delegado_usuario_id = $1 OR EXISTS (
                SELECT 1 FROM tarea_efectivos te JOIN efectivos e ON e.id = te.efectivo_id
                WHERE te.tarea_id = t.id AND e.usuario_id = $1))",
    )
    .bind(user_id)
    .bind(days)
    .fetch_one(db)
    .await?;
    Ok(Expected {
        total: row.0,
        programada: row.1,
        en_curso: row.2,
        pausada: row.3,
        finalizada: row.4,
        cancelada: row.5,
        promedio: row.6.unwrap_or(0.0),
    })
}

fn observed(body: &Value) -> Expected {
    let n = |v: &Value| v.as_i64().unwrap_or(-1);
    Expected {
        total: n(&body["total"]),
        programada: n(&body["estados"]["programada"]),
        en_curso: n(&body["estados"]["en_curso"]),
        pausada: n(&body["estados"]["pausada"]),
        finalizada: n(&body["estados"]["finalizada"]),
        cancelada: n(&body["estados"]["cancelada"]),
        promedio: body["promedio_duracion_horas"].as_f64().unwrap_or(f64::NAN),
    }
}

fn assert_consistent(body: &Value, user_id: i64, days: i64) {
    let mut keys: Vec<&str> = body
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort();
    let mut wanted: Vec<&str> = STATS_KEYS.to_vec();
    wanted.sort();
    assert_eq!(keys, wanted, "{body}");
    assert_eq!(body["user_id"], user_id);
    assert_eq!(body["period_days"], days);
    assert_eq!(body["completadas"], body["estados"]["finalizada"], "{body}");
    assert_eq!(body["en_progreso"], body["estados"]["en_curso"], "{body}");
    assert_eq!(body["programadas"], body["estados"]["programada"], "{body}");
    assert_eq!(body["pausadas"], body["estados"]["pausada"], "{body}");
    assert_eq!(body["canceladas"], body["estados"]["cancelada"], "{body}");
    let completadas = body["completadas"].as_f64().unwrap_or(f64::NAN);
    let productividad = (completadas / days as f64 * 100.0).round() / 100.0;
    assert_eq!(body["productividad_diaria"].as_f64(), Some(productividad), "{body}");
    let at = body["calculated_at"].as_str().unwrap_or_default();
    assert!(
        at.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(at).is_ok(),
        "calculated_at: {at}"
    );
}

async fn stats(app: &TestApp, user_id: i64, query: &str, token: &str) -> anyhow::Result<ApiResponse> {
    app.get(&format!("/api/v1/stats/user/{user_id}{query}"), Some(token))
        .await
}

async fn invalidate(app: &TestApp, user_id: i64, token: &str) -> anyhow::Result<ApiResponse> {
    send(
        app,
        Method::POST,
        &format!("/api/v1/stats/invalidate/user/{user_id}"),
        Some(token),
        Body::None,
        &[],
    )
    .await
}

async fn usuario_id(db: &PgPool, email: &str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT id FROM usuarios WHERE email = $1")
        .bind(email)
        .fetch_one(db)
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_equal_a_direct_count() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    // The fixed logins, the busiest delegados and the busiest assignees.
    let mut users: Vec<i64> = sqlx::query_scalar(
        "(SELECT delegado_usuario_id FROM tareas GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 3)
         UNION
         (SELECT e.usuario_id FROM tarea_efectivos te JOIN efectivos e ON e.id = te.efectivo_id
          GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 3)",
    )
    .fetch_all(&app.db)
    .await?;
    users.extend([app.efectivo.id, app.supervisor.id]);
    let mut finalizadas = 0;
    for user in users {
        for days in [1, 7, 30, 365] {
            let before = expected(&app.db, user, days).await?;
            let r = stats(&app, user, &format!("?days={days}&use_cache=false"), &app.admin.token).await?;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            let after = expected(&app.db, user, days).await?;
            assert_consistent(&r.body, user, days.into());
            assert_eq!(r.body["_cache"], json!({"hit": false, "source": "db"}));
            let got = observed(&r.body);
            // A tarea may cross the period's edge between the two counts.
            let matches = |e: &Expected| {
                Expected { promedio: 0.0, ..*e } == Expected { promedio: 0.0, ..got }
                    && (e.promedio - got.promedio).abs() < 0.006
            };
            assert!(
                matches(&before) || matches(&after),
                "usuario {user}, {days} d: {got:?} vs {before:?}"
            );
            finalizadas += got.finalizada;
        }
    }
    assert!(finalizadas > 0, "the sample should include finished tasks");

    // The default period is 30 days; a usuario reads its own figures.
    let r = stats(&app, app.efectivo.id, "", &app.efectivo.token).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["period_days"], 30);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_parameters_are_checked() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let other = app.supervisor.id;
    let r = stats(&app, other, "", &app.efectivo.token).await?;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = invalidate(&app, other, &app.efectivo.token).await?;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = stats(&app, app.efectivo.id, "", &app.supervisor.token).await?;
    assert_eq!(r.status, StatusCode::OK, "a supervisor reads anyone's: {}", r.text);

    for (query, fields) in [
        ("?days=0", vec!["days"]),
        ("?days=366", vec!["days"]),
        ("?days=abc&use_cache=maybe", vec!["days", "use_cache"]),
    ] {
        let r = stats(&app, app.efectivo.id, query, &app.efectivo.token).await?;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        let mut got: Vec<&str> = r.body["details"]["fields"]
            .as_array()
            .map(|a| a.iter().filter_map(|f| f["field"].as_str()).collect())
            .unwrap_or_default();
        got.sort();
        assert_eq!(got, fields, "{query}: {}", r.text);
    }
    let r = stats(&app, 987_654_321, "", &app.admin.token).await?;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let r = app.get("/api/v1/stats/user/1", None).await?;
    assert_error(&r, StatusCode::UNAUTHORIZED, "not_authenticated");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_call_hits_the_cache_and_invalidation_makes_a_miss() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let user = usuario_id(&app.db, "efectivo735@seed.invalid").await?;
    let query = "?days=17";
    let r = invalidate(&app, user, &app.admin.token).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["invalidated"], true);
    assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", r.text);

    let first = stats(&app, user, query, &app.admin.token).await?;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.body["_cache"], json!({"hit": false, "source": "db"}));
    let second = stats(&app, user, query, &app.admin.token).await?;
    assert_eq!(
        second.body["_cache"],
        json!({"hit": true, "source": "redis"}),
        "{}",
        second.text
    );
    assert_consistent(&second.body, user, 17);
    // The same figures, computed once.
    assert_eq!(second.body["calculated_at"], first.body["calculated_at"]);
    assert_eq!(observed(&second.body), observed(&first.body));

    // use_cache=false always computes.
    let live = stats(&app, user, "?days=17&use_cache=false", &app.admin.token).await?;
    assert_eq!(live.body["_cache"], json!({"hit": false, "source": "db"}));

    let r = invalidate(&app, user, &app.supervisor.token).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let after = stats(&app, user, query, &app.admin.token).await?;
    assert_eq!(after.body["_cache"]["hit"], false, "{}", after.text);
    app.stop().await
}

/// A tarea written behind the service's back, announced by a task event on
/// the usuario's topic: the relay's version bump is what makes it visible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_event_bumps_the_version_so_the_next_call_recounts() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let user = usuario_id(&app.db, "efectivo733@seed.invalid").await?;
    let query = "?days=23";
    invalidate(&app, user, &app.admin.token).await?;
    let before = stats(&app, user, query, &app.admin.token).await?;
    assert_eq!(before.body["_cache"]["hit"], false, "{}", before.text);
    let hit = stats(&app, user, query, &app.admin.token).await?;
    assert_eq!(hit.body["_cache"]["hit"], true, "{}", hit.text);

    let mut tx = app.db.begin().await?;
    let tarea: i64 = sqlx::query_scalar(
        "INSERT INTO tareas (codigo, titulo, tipo, inicio_programado, delegado_usuario_id, creado_por_usuario_id)
         VALUES ('STATS-E2E-1', 'Tarea de prueba', 'patrullaje', now(), $1, $2) RETURNING id",
    )
    .bind(user)
    .bind(app.supervisor.id)
    .fetch_one(&mut *tx)
    .await?;
    let topics = vec!["tasks".to_string(), format!("tasks.{tarea}"), format!("user.{user}")];
    sqlx::query(
        "INSERT INTO outbox_events (event_id, event_type, topics, payload) VALUES ($1, 'task_created', $2, $3)",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(&topics)
    .bind(json!({"tarea": {"id": tarea}}))
    .execute(&mut *tx)
    .await?;
    sqlx::query("SELECT pg_notify('gad_outbox', '')")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;

    let recounted = until_miss(&app, user, query).await?;
    assert_eq!(
        recounted.body["total"].as_i64(),
        before.body["total"].as_i64().map(|t| t + 1),
        "{}",
        recounted.text
    );
    assert_eq!(
        recounted.body["programadas"].as_i64(),
        before.body["programadas"].as_i64().map(|t| t + 1)
    );
    let again = stats(&app, user, query, &app.admin.token).await?;
    assert_eq!(again.body["_cache"]["hit"], true, "{}", again.text);
    app.stop().await
}

/// The same through the API: creating a task for the usuario.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_a_task_for_the_usuario_makes_the_next_call_recount() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let user = usuario_id(&app.db, "efectivo734@seed.invalid").await?;
    let query = "?days=29";
    invalidate(&app, user, &app.admin.token).await?;
    let before = stats(&app, user, query, &app.admin.token).await?;
    let hit = stats(&app, user, query, &app.admin.token).await?;
    assert_eq!(hit.body["_cache"]["hit"], true, "{}", hit.text);

    let body = json!({
        "codigo": "STATS-E2E-2",
        "titulo": "Patrullaje de prueba",
        "tipo": "patrullaje",
        "inicio_programado": chrono::Utc::now().to_rfc3339(),
        "delegado_usuario_id": user,
    });
    let r = send_waiting(&app, Method::POST, "/api/v1/tasks", &app.supervisor.token, Some(&body)).await?;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let recounted = until_miss(&app, user, query).await?;
    assert_eq!(
        recounted.body["total"].as_i64(),
        before.body["total"].as_i64().map(|t| t + 1),
        "{}",
        recounted.text
    );
    app.stop().await
}

/// Polls until an answer is not from the cache (the bump is asynchronous).
async fn until_miss(app: &TestApp, user: i64, query: &str) -> anyhow::Result<ApiResponse> {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let r = stats(app, user, query, &app.admin.token).await?;
        anyhow::ensure!(r.status == StatusCode::OK, "{}", r.text);
        if r.body["_cache"]["hit"] == false {
            return Ok(r);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "still cached after {WITHIN:?}: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_stats_are_computed_live() -> anyhow::Result<()> {
    let mut app = CustomApp::new(CustomApp::dead_redis).await?;
    app.start_ingress().await?;
    let me = app.user(gad_e2e::users::EFECTIVO).await?;
    for _ in 0..2 {
        let r = app
            .send(Method::GET, &format!("/api/v1/stats/user/{}?days=30", me.id), &me.token)
            .await?;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["_cache"], json!({"hit": false, "source": "db"}));
        assert_consistent(&r.body, me.id, 30);
        assert_eq!(observed(&r.body), expected(&app.db, me.id, 30).await?);
    }
    // Invalidation cannot happen without Redis, and says so.
    let r = app
        .send(
            Method::POST,
            &format!("/api/v1/stats/invalidate/user/{}", me.id),
            &me.token,
        )
        .await?;
    assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "dependency_unavailable");
    assert_eq!(r.body["details"]["dependency"], "redis");
    app.stop().await
}
