//! Emergency dispatch (§4): the nearest free unit, never booked twice, with
//! every side effect in one transaction; no unit; re-dispatch on decline and
//! on ack timeout; the 30 s retry budget; §7 validation.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use gad_e2e::tasks::ServiceTasks;
use gad_e2e::{ApiResponse, TestApp, spawn_app};
use gad_shared::envelope::{self, CONTENT_TYPE_MSGPACK, ENVELOPE_VERSION, JobEnvelope, headers};
use gad_shared::job::kind_spec;
use gad_workers::jobs::emergency::redispatch;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::efectivos::{WAIT, assert_millis_z, invalid_fields, send};
use crate::error_shape::assert_error;

const PATH: &str = "/api/v1/tasks/emergency";
/// Obelisco, Buenos Aires: inside the seeded area.
const LAT: f64 = -34.6037;
const LNG: f64 = -58.3816;

async fn report(app: &TestApp, token: &str, body: &Value) -> anyhow::Result<ApiResponse> {
    send(app, Method::POST, PATH, Some(token), Some(body), &[WAIT]).await
}

fn body_at(lat: f64, lng: f64) -> Value {
    json!({ "lat": lat, "lng": lng, "reporter": { "nombre": "Vecina", "telefono": "+54 11 5555-0000" }, "descripcion": "Choque en la esquina" })
}

/// The `n` available, located units nearest to (`lat`, `lng`), nearest first,
/// by a plain sort (the oracle of the KNN).
async fn nearest_available(app: &TestApp, lat: f64, lng: f64, n: i64) -> anyhow::Result<Vec<(i64, f64)>> {
    Ok(sqlx::query_as(
        "SELECT e.id, ST_Distance(e.ubicacion, ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography, false)
         FROM efectivos e
         WHERE e.disponibilidad = 'disponible' AND e.deleted_at IS NULL AND e.ubicacion IS NOT NULL
         ORDER BY 2, e.id LIMIT $3",
    )
    .bind(lat)
    .bind(lng)
    .bind(n)
    .fetch_all(&app.db)
    .await?)
}

/// Leaves exactly `keep` dispatchable: every other available unit becomes `no_disponible`.
async fn only_available(app: &TestApp, keep: &[i64]) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE efectivos SET disponibilidad = 'no_disponible' WHERE disponibilidad = 'disponible' AND id <> ALL($1)",
    )
    .bind(keep)
    .execute(&app.db)
    .await?;
    Ok(())
}

async fn disponibilidad(app: &TestApp, id: i64) -> anyhow::Result<String> {
    Ok(
        sqlx::query_scalar("SELECT disponibilidad::text FROM efectivos WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await?,
    )
}

async fn usuario_of(app: &TestApp, efectivo: i64) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT usuario_id FROM efectivos WHERE id = $1")
        .bind(efectivo)
        .fetch_one(&app.db)
        .await?)
}

/// `alert` kinds written for a tarea, in commit order.
async fn alert_kinds(app: &TestApp, tarea: i64) -> anyhow::Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT payload->>'kind' FROM outbox_events WHERE event_type = 'alert' AND (payload->>'tarea_id')::bigint = $1 ORDER BY id",
    )
    .bind(tarea)
    .fetch_all(&app.db)
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_emergencies_book_twenty_units_once_each() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let units: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM efectivos WHERE disponibilidad = 'disponible' AND deleted_at IS NULL AND ubicacion IS NOT NULL ORDER BY id LIMIT 20",
    )
    .fetch_all(&app.db)
    .await?;
    assert_eq!(units.len(), 20);
    only_available(&app, &units).await?;

    let tokens = [&app.efectivo.token, &app.supervisor.token, &app.admin.token];
    let requests = (0..100).map(|i| {
        let token = tokens[i % tokens.len()];
        let body = body_at(LAT + (i as f64) * 1e-5, LNG);
        let app = &app;
        async move {
            send(
                app,
                Method::POST,
                PATH,
                Some(token),
                Some(&body),
                &[("Prefer", "wait=30")],
            )
            .await
        }
    });
    let answers = futures::future::join_all(requests).await;

    let mut assigned = Vec::new();
    let mut refused = 0;
    for r in answers {
        let r = r?;
        match r.status {
            StatusCode::CREATED => assigned.push(r.body),
            StatusCode::NOT_FOUND => {
                assert_error(&r, StatusCode::NOT_FOUND, "no_efectivo_available");
                refused += 1;
            }
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert_eq!(assigned.len(), 20, "min(N, M) tareas");
    assert_eq!(refused, 80);
    let booked: HashSet<i64> = assigned
        .iter()
        .filter_map(|b| b["assigned_efectivo_id"].as_i64())
        .collect();
    assert_eq!(
        booked,
        units.iter().copied().collect::<HashSet<_>>(),
        "20 distinct units, exactly the free ones"
    );

    // Behind the API: one emergencia per unit, every unit en_tarea, one asignación each.
    let per_unit: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT te.efectivo_id, count(*) FROM tarea_efectivos te JOIN tareas t ON t.id = te.tarea_id
         WHERE t.tipo = 'emergencia' GROUP BY te.efectivo_id",
    )
    .fetch_all(&app.db)
    .await?;
    assert_eq!(per_unit.len(), 20);
    assert!(
        per_unit.iter().all(|(_, n)| *n == 1),
        "a unit was double-booked: {per_unit:?}"
    );
    let tareas: i64 = sqlx::query_scalar("SELECT count(*) FROM tareas WHERE tipo = 'emergencia'")
        .fetch_one(&app.db)
        .await?;
    assert_eq!(tareas, 20);
    for id in &units {
        assert_eq!(disponibilidad(&app, *id).await?, "en_tarea");
    }
    let codigos: HashSet<String> = assigned
        .iter()
        .filter_map(|b| b["codigo"].as_str().map(str::to_string))
        .collect();
    assert_eq!(codigos.len(), 20);
    let audit: Vec<(String, bool, i64)> = sqlx::query_as(
        "SELECT action, success, count(*) FROM audit_log WHERE action LIKE 'emergency_%' GROUP BY 1, 2 ORDER BY 1",
    )
    .fetch_all(&app.db)
    .await?;
    assert_eq!(
        audit,
        [
            ("emergency_created".to_string(), true, 20),
            ("emergency_unassigned".to_string(), false, 80)
        ]
    );
    let failed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM jobs WHERE kind = 'emergency.dispatch' AND status = 'failed' AND error->>'error' = 'no_efectivo_available'",
    )
    .fetch_one(&app.db)
    .await?;
    assert_eq!(failed, 80);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_assigns_the_nearest_unit_with_every_side_effect() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let nearest = nearest_available(&app, LAT, LNG, 2).await?;
    let (unit, distance) = nearest[0];
    assert!(
        nearest[1].1 > distance * (1.0 + 1e-9),
        "the oracle has a tie; pick another point"
    );
    let unit_usuario = usuario_of(&app, unit).await?;
    // A Telegram-linked unit also gets the Telegram row.
    sqlx::query("UPDATE usuarios SET telegram_id = 990000123 WHERE id = $1")
        .bind(unit_usuario)
        .execute(&app.db)
        .await?;
    let mut ws = app.ws_connect(&app.supervisor.token).await?;
    ws.next_event("connection_ack", Duration::from_secs(5)).await?;
    ws.subscribe(&["alerts".to_string()]).await?;

    let r = report(&app, &app.efectivo.token, &body_at(LAT, LNG)).await?;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let b = &r.body;
    assert_eq!(b.as_object().map(|o| o.len()), Some(9), "{b}");
    assert_eq!(b["assigned_efectivo_id"], unit);
    assert_eq!(b["status"], "assigned");
    let shown = b["distance_m"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (shown - distance).abs() <= 1e-6 * distance.max(1.0),
        "distance {shown} vs oracle {distance}"
    );
    let codigo = b["codigo"].as_str().unwrap_or_default().to_string();
    let today = Utc::now().format("%y%m%d").to_string();
    assert!(
        codigo.len() == 18
            && codigo.starts_with(&format!("EMG-{today}-"))
            && codigo[11..].bytes().all(|c| c.is_ascii_digit()),
        "codigo {codigo}"
    );
    assert_millis_z(&b["received_at"], "received_at");
    assert_millis_z(&b["assigned_at"], "assigned_at");
    assert!(b["received_at"].as_str() <= b["assigned_at"].as_str());
    let tarea = b["tarea_id"].as_i64().context("tarea_id")?;
    let efectivo_codigo: String = sqlx::query_scalar("SELECT codigo_interno FROM efectivos WHERE id = $1")
        .bind(unit)
        .fetch_one(&app.db)
        .await?;
    assert_eq!(b["efectivo_codigo"], efectivo_codigo.as_str());

    #[derive(sqlx::FromRow, Debug)]
    struct Row {
        uuid: Uuid,
        tipo: String,
        prioridad: i16,
        estado: String,
        origen: String,
        titulo: String,
        delegado_usuario_id: i64,
        creado_por_usuario_id: i64,
        extra_data: Value,
        lat: f64,
        lng: f64,
    }
    let row: Row = sqlx::query_as(
        "SELECT uuid, tipo::text AS tipo, prioridad, estado::text AS estado, origen, titulo, delegado_usuario_id,
                creado_por_usuario_id, extra_data, ST_Y(ubicacion::geometry) AS lat, ST_X(ubicacion::geometry) AS lng
         FROM tareas WHERE id = $1",
    )
    .bind(tarea)
    .fetch_one(&app.db)
    .await?;
    assert_eq!(b["tarea_uuid"], row.uuid.to_string().as_str());
    assert_eq!(
        (
            row.tipo.as_str(),
            row.prioridad,
            row.estado.as_str(),
            row.origen.as_str()
        ),
        ("emergencia", 5, "programada", "emergencia")
    );
    assert_eq!(row.titulo, "Emergencia: Choque en la esquina");
    assert_eq!(row.delegado_usuario_id, unit_usuario);
    assert_eq!(row.creado_por_usuario_id, app.efectivo.id);
    assert_eq!(row.extra_data["reporte"]["nombre"], "Vecina");
    assert!((row.lat - LAT).abs() < 1e-9 && (row.lng - LNG).abs() < 1e-9);
    assert_eq!(disponibilidad(&app, unit).await?, "en_tarea");
    let asignacion: (Option<i64>, String) = sqlx::query_as(
        "SELECT asignado_por_usuario_id, respuesta::text FROM tarea_efectivos WHERE tarea_id = $1 AND efectivo_id = $2",
    )
    .bind(tarea)
    .bind(unit)
    .fetch_one(&app.db)
    .await?;
    assert_eq!(asignacion, (None, "pendiente".to_string()));
    let historial: Vec<(Option<String>, String, Option<String>)> = sqlx::query_as(
        "SELECT estado_anterior::text, estado_nuevo::text, motivo FROM historial_estados WHERE tarea_id = $1",
    )
    .bind(tarea)
    .fetch_all(&app.db)
    .await?;
    assert_eq!(
        historial,
        [(
            None,
            "programada".to_string(),
            Some("despacho de emergencia".to_string())
        )]
    );
    let audit: (String, bool) = sqlx::query_as(
        "SELECT severity::text, success FROM audit_log WHERE action = 'emergency_created' AND resource_type = 'tarea' AND resource_id = $1",
    )
    .bind(tarea.to_string())
    .fetch_one(&app.db)
    .await?;
    assert_eq!(audit, ("high".to_string(), true));

    // Outbox: the three events and the alert, all from this job.
    let job_id: Uuid = sqlx::query_scalar("SELECT creado_por_job_id FROM tareas WHERE id = $1")
        .bind(tarea)
        .fetch_one(&app.db)
        .await?;
    let events: Vec<(String, Vec<String>, Value)> =
        sqlx::query_as("SELECT event_type, topics, payload FROM outbox_events WHERE job_id = $1 ORDER BY id")
            .bind(job_id)
            .fetch_all(&app.db)
            .await?;
    let types: Vec<&str> = events.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(
        types,
        ["task_created", "task_assigned", "efectivo_status_changed", "alert"]
    );
    let task_topics = &events[0].1;
    for topic in [
        "tasks".to_string(),
        format!("tasks.{tarea}"),
        format!("user.{unit_usuario}"),
    ] {
        assert!(task_topics.contains(&topic), "{topic} missing from {task_topics:?}");
    }
    assert_eq!(events[0].2["tarea"]["id"], tarea);
    assert_eq!(
        events[1].2,
        json!({ "tarea_id": tarea, "codigo": codigo, "efectivo_id": unit, "usuario_id": unit_usuario, "accion": "asignado" })
    );
    assert_eq!(events[2].1, ["efectivos".to_string(), format!("efectivos.{unit}")]);
    assert_eq!(events[2].2["disponibilidad_anterior"], "disponible");
    assert_eq!(events[2].2["disponibilidad"], "en_tarea");
    assert_eq!(events[3].1, ["alerts".to_string()]);
    assert_eq!(events[3].2["kind"], "emergency_created");
    let notifications: Vec<(String, i16, i64, String)> = sqlx::query_as(
        "SELECT channel, priority, recipient_usuario_id, kind FROM notifications WHERE tarea_id = $1 ORDER BY channel",
    )
    .bind(tarea)
    .fetch_all(&app.db)
    .await?;
    assert_eq!(
        notifications,
        [
            (
                "telegram".to_string(),
                0,
                unit_usuario,
                "emergency_assigned".to_string()
            ),
            (
                "websocket".to_string(),
                0,
                unit_usuario,
                "emergency_assigned".to_string()
            ),
        ]
    );

    // And the supervisor's dashboard hears about it.
    let frame = ws
        .next_matching(Duration::from_secs(10), |f| {
            f["event_type"] == "alert" && f["data"]["tarea_id"] == tarea
        })
        .await?;
    assert_eq!(frame["data"]["kind"], "emergency_created");
    assert_eq!(frame["topic"], "alerts");
    ws.close().await;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_unit_fails_with_an_alert_and_an_audit_row() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    only_available(&app, &[]).await?;
    let r = report(
        &app,
        &app.supervisor.token,
        &json!({ "lat": LAT, "lng": LNG, "telegram_id": 5555 }),
    )
    .await?;
    assert_error(&r, StatusCode::NOT_FOUND, "no_efectivo_available");
    let job_id = r.header("x-job-id").context("X-Job-Id")?.to_string();
    let job = app
        .wait_for_job(&job_id, &app.supervisor.token, Duration::from_secs(10))
        .await?;
    assert_eq!(job["status"], "failed", "{job}");
    let tareas: i64 = sqlx::query_scalar("SELECT count(*) FROM tareas WHERE tipo = 'emergencia'")
        .fetch_one(&app.db)
        .await?;
    assert_eq!(tareas, 0);
    let job_uuid = Uuid::parse_str(&job_id)?;
    let audit: (bool, Option<String>, Option<i64>) = sqlx::query_as(
        "SELECT success, error_code, actor_usuario_id FROM audit_log WHERE action = 'emergency_unassigned' AND job_id = $1",
    )
    .bind(job_uuid)
    .fetch_one(&app.db)
    .await?;
    assert_eq!(
        audit,
        (
            false,
            Some("no_efectivo_available".to_string()),
            Some(app.supervisor.id)
        )
    );
    let alerts: Vec<Value> =
        sqlx::query_scalar("SELECT payload FROM outbox_events WHERE event_type = 'alert' AND job_id = $1")
            .bind(job_uuid)
            .fetch_all(&app.db)
            .await?;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["kind"], "emergency_unassigned");
    assert_eq!(alerts[0]["level"], "critical");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_reports_are_422_and_queue_nothing() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let token = &app.efectivo.token;
    let cases = [
        (json!({}), vec!["lat", "lng", "reporter"]),
        (
            json!({ "lat": 91, "lng": "x", "telegram_id": 0, "descripcion": "x".repeat(1001),
                    "reporter": { "nombre": "x".repeat(101), "telefono": "abc" } }),
            vec![
                "lat",
                "lng",
                "telegram_id",
                "descripcion",
                "reporter.nombre",
                "reporter.telefono",
            ],
        ),
        (json!({ "lat": 1, "lng": 1, "reporter": {} }), vec!["reporter"]),
        (json!({ "lat": 1, "lng": 1, "reporter": "Ana" }), vec!["reporter"]),
        (
            json!({ "lat": 1, "lng": -181, "telegram_id": "12" }),
            vec!["lng", "telegram_id"],
        ),
    ];
    for (body, expected) in cases {
        let r = report(&app, token, &body).await?;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        let fields: Vec<String> = invalid_fields(&r).into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, expected, "{body}");
    }
    let r = send(&app, Method::POST, PATH, None, Some(&body_at(LAT, LNG)), &[]).await?;
    assert_error(&r, StatusCode::UNAUTHORIZED, "not_authenticated");
    let r = app
        .client
        .post(format!("{}{PATH}", app.http))
        .bearer_auth(token)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = app
        .client
        .post(format!("{}{PATH}", app.http))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        app.jobs_stream_messages().await?,
        Some(0),
        "an invalid report reached the queue"
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_emergency_moves_to_the_next_unit() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let pair = nearest_available(&app, LAT, LNG, 2).await?;
    let (a, b) = (pair[0].0, pair[1].0);
    only_available(&app, &[a, b]).await?;
    let r = report(&app, &app.admin.token, &body_at(LAT, LNG)).await?;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["assigned_efectivo_id"], a);
    let tarea = r.body["tarea_id"].as_i64().context("tarea_id")?;

    let mut tx = app.db.begin().await?;
    redispatch(&mut tx, tarea, a, Uuid::now_v7())
        .await
        .map_err(|e| anyhow::anyhow!("redispatch: {e}"))?;
    tx.commit().await?;
    let b_usuario = usuario_of(&app, b).await?;
    let (delegado, declined): (i64, Value) =
        sqlx::query_as("SELECT delegado_usuario_id, extra_data->'declined' FROM tareas WHERE id = $1")
            .bind(tarea)
            .fetch_one(&app.db)
            .await?;
    assert_eq!(delegado, b_usuario, "the delegado moves with the asignación");
    assert_eq!(declined, json!([a]));
    let asignaciones: Vec<(i64, String)> =
        sqlx::query_as("SELECT efectivo_id, respuesta::text FROM tarea_efectivos WHERE tarea_id = $1")
            .bind(tarea)
            .fetch_all(&app.db)
            .await?;
    assert_eq!(asignaciones, [(b, "pendiente".to_string())]);
    assert_eq!(disponibilidad(&app, a).await?, "disponible");
    assert_eq!(disponibilidad(&app, b).await?, "en_tarea");
    let to_b: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE tarea_id = $1 AND recipient_usuario_id = $2 AND kind = 'emergency_assigned'",
    )
    .bind(tarea)
    .bind(b_usuario)
    .fetch_one(&app.db)
    .await?;
    assert_eq!(to_b, 1);
    assert_eq!(
        alert_kinds(&app, tarea).await?,
        ["emergency_created", "assignment_declined"]
    );
    // The answer itself (audit, `task_assigned` rechazada) is written by `task.respond`, the caller.
    let answered: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox_events WHERE event_type = 'task_assigned' AND payload->>'accion' = 'rechazada'",
    )
    .fetch_one(&app.db)
    .await?;
    assert_eq!(answered, 0);

    // B declines too; A declined already, nobody else is free: supervisors are told.
    let mut tx = app.db.begin().await?;
    redispatch(&mut tx, tarea, b, Uuid::now_v7())
        .await
        .map_err(|e| anyhow::anyhow!("redispatch: {e}"))?;
    tx.commit().await?;
    assert_eq!(
        alert_kinds(&app, tarea).await?,
        [
            "emergency_created",
            "assignment_declined",
            "assignment_declined",
            "emergency_unassigned"
        ]
    );
    assert_eq!(disponibilidad(&app, b).await?, "disponible");
    let asignaciones: Vec<(i64, String)> =
        sqlx::query_as("SELECT efectivo_id, respuesta::text FROM tarea_efectivos WHERE tarea_id = $1")
            .bind(tarea)
            .fetch_all(&app.db)
            .await?;
    assert_eq!(asignaciones, [(b, "rechazada".to_string())]);
    let unassigned: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'emergency_unassigned' AND resource_type = 'tarea' AND resource_id = $1",
    )
    .bind(tarea.to_string())
    .fetch_one(&app.db)
    .await?;
    assert_eq!(unassigned, 1);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_emergencies_are_reminded_then_redispatched() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    // A second worker process with a short ack timeout and a fast timers loop.
    let mut extra = ServiceTasks::new(CancellationToken::new());
    let mut settings = gad_e2e::workers::settings(&app.isolation);
    settings.workers.emergency_ack_timeout = Duration::from_secs(2);
    settings.workers.timers_interval = Duration::from_millis(100);
    let workers = gad_workers::Application::build(settings)
        .await
        .context("building the extra workers")?;
    extra.spawn("workers-short-timers", workers.run_until(extra.shutdown()));

    let pair = nearest_available(&app, LAT, LNG, 2).await?;
    let (a, b) = (pair[0].0, pair[1].0);
    only_available(&app, &[a, b]).await?;
    let r = report(&app, &app.supervisor.token, &body_at(LAT, LNG)).await?;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["assigned_efectivo_id"], a);
    let tarea = r.body["tarea_id"].as_i64().context("tarea_id")?;

    // A does not answer, then B does not either: both are passed over, in order.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let declined: Value = sqlx::query_scalar("SELECT extra_data->'declined' FROM tareas WHERE id = $1")
            .bind(tarea)
            .fetch_one(&app.db)
            .await?;
        if declined == json!([a, b]) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not re-dispatched in time; declined = {declined}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        alert_kinds(&app, tarea).await?,
        [
            "emergency_created",
            "ack_timeout",
            "ack_timeout",
            "emergency_unassigned"
        ]
    );
    for unit in [a, b] {
        assert_eq!(disponibilidad(&app, unit).await?, "disponible");
        let usuario = usuario_of(&app, unit).await?;
        let rows: Vec<bool> = sqlx::query_scalar(
            "SELECT (payload->>'reminder')::boolean FROM notifications
             WHERE tarea_id = $1 AND recipient_usuario_id = $2 AND kind = 'emergency_assigned' AND channel = 'websocket' ORDER BY created_at",
        )
        .bind(tarea)
        .bind(usuario)
        .fetch_all(&app.db)
        .await?;
        assert_eq!(
            rows,
            [false, true],
            "unit {unit}: the notice, then one reminder at half-time"
        );
    }
    let answered: Vec<Value> = sqlx::query_scalar(
        "SELECT after FROM audit_log WHERE action = 'assignment_answered' AND resource_id = $1 ORDER BY id",
    )
    .bind(tarea.to_string())
    .fetch_all(&app.db)
    .await?;
    assert_eq!(answered.len(), 2);
    assert!(answered.iter().all(|a| a["motivo"] == "ack_timeout"));
    let estado: String = sqlx::query_scalar("SELECT estado::text FROM tareas WHERE id = $1")
        .bind(tarea)
        .fetch_one(&app.db)
        .await?;
    assert_eq!(estado, "programada", "the tarea waits for a supervisor");
    extra.stop().await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_past_its_retry_budget_fails_and_alerts() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    // As if it had been retrying since 31 s ago: published straight to the queue, as an importer may.
    let job_id = Uuid::now_v7();
    let env = JobEnvelope {
        v: ENVELOPE_VERSION,
        job_id,
        kind: "emergency.dispatch".into(),
        submitted_by: Some(app.supervisor.id),
        submitted_at: Utc::now() - chrono::Duration::seconds(31),
        request_id: None,
        client: None,
        payload: body_at(LAT, LNG),
    };
    let spec = kind_spec("emergency.dispatch").context("kind")?;
    let mut hdrs = async_nats::HeaderMap::new();
    hdrs.insert(headers::CONTENT_TYPE, CONTENT_TYPE_MSGPACK);
    hdrs.insert(headers::MSG_ID, job_id.to_string().as_str());
    app.js
        .publish_with_headers(app.topology.job_subject(spec), hdrs, envelope::encode(&env)?)
        .await?
        .await?;

    // Nothing recorded it as queued (no ingress): the worker's row is the first trace.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let (status, error) = loop {
        let row: Option<(String, Option<Value>)> =
            sqlx::query_as("SELECT status::text, error FROM jobs WHERE job_id = $1")
                .bind(job_id)
                .fetch_optional(&app.db)
                .await?;
        match row {
            Some((status, error)) if gad_e2e::is_terminal(&status) => break (status, error.unwrap_or_default()),
            other => assert!(
                tokio::time::Instant::now() < deadline,
                "job not finished in time: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status, "failed", "{error}");
    assert_eq!(error["http_status"], 503);
    assert_eq!(error["error"], "dependency_unavailable");
    let job = app
        .wait_for_job(&job_id.to_string(), &app.supervisor.token, Duration::from_secs(5))
        .await?;
    assert_eq!(job["status"], "failed", "{job}");
    let tareas: i64 = sqlx::query_scalar("SELECT count(*) FROM tareas WHERE creado_por_job_id = $1")
        .bind(job_id)
        .fetch_one(&app.db)
        .await?;
    assert_eq!(tareas, 0);
    let code: Option<String> =
        sqlx::query_scalar("SELECT error_code FROM audit_log WHERE action = 'emergency_unassigned' AND job_id = $1")
            .bind(job_id)
            .fetch_one(&app.db)
            .await?;
    assert_eq!(code.as_deref(), Some("dependency_unavailable"));
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT payload->>'kind' FROM outbox_events WHERE event_type = 'alert' AND job_id = $1")
            .bind(job_id)
            .fetch_all(&app.db)
            .await?;
    assert_eq!(kinds, ["emergency_unassigned"]);
    app.stop().await
}

/// The same decline through the API, then the next unit accepts (§4 Decline / Accept).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declining_through_respond_moves_the_task_and_the_next_unit_accepts() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let pair = nearest_available(&app, LAT, LNG, 2).await?;
    let (a, b) = (pair[0].0, pair[1].0);
    only_available(&app, &[a, b]).await?;
    let r = report(&app, &app.supervisor.token, &body_at(LAT, LNG)).await?;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let tarea = r.body["tarea_id"].as_i64().context("tarea_id")?;
    let login = |efectivo: i64| {
        let app = &app;
        async move {
            let email: String = sqlx::query_scalar(
                "SELECT u.email FROM usuarios u JOIN efectivos e ON e.usuario_id = u.id WHERE e.id = $1",
            )
            .bind(efectivo)
            .fetch_one(&app.db)
            .await?;
            gad_e2e::users::SeedUser::load(&app.db, &app.isolation.auth, &email).await
        }
    };
    let (unit_a, unit_b) = (login(a).await?, login(b).await?);
    let path = format!("/api/v1/tasks/{tarea}/respond");

    let r = send(
        &app,
        Method::POST,
        &path,
        Some(&unit_a.token),
        Some(&json!({ "respuesta": "rechazada", "motivo": "ocupado" })),
        &[WAIT],
    )
    .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body,
        json!({ "tarea_id": tarea, "efectivo_id": a, "respuesta": "rechazada" })
    );
    let (delegado, declined): (i64, Value) =
        sqlx::query_as("SELECT delegado_usuario_id, extra_data->'declined' FROM tareas WHERE id = $1")
            .bind(tarea)
            .fetch_one(&app.db)
            .await?;
    assert_eq!((delegado, declined), (unit_b.id, json!([a])));
    assert_eq!(disponibilidad(&app, a).await?, "disponible");
    assert_eq!(
        alert_kinds(&app, tarea).await?,
        ["emergency_created", "assignment_declined"]
    );

    let r = send(
        &app,
        Method::POST,
        &path,
        Some(&unit_b.token),
        Some(&json!({ "respuesta": "aceptada" })),
        &[WAIT],
    )
    .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let estado: String = sqlx::query_scalar("SELECT estado::text FROM tareas WHERE id = $1")
        .bind(tarea)
        .fetch_one(&app.db)
        .await?;
    assert_eq!(estado, "en_curso", "accepting starts the emergency");
    assert_eq!(disponibilidad(&app, b).await?, "en_tarea");
    app.stop().await
}
