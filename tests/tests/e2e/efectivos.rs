//! `/api/v1/efectivos` (§5, §6.3): who may read and change units, location
//! updates against the database, out-of-order updates, availability rules.

use std::time::Duration;

use gad_e2e::{ApiResponse, TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::error_shape::assert_error;

pub(crate) const WAIT: (&str, &str) = ("Prefer", "wait=20");

/// A request with an optional JSON body, as a client sends it.
pub(crate) async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> anyhow::Result<ApiResponse> {
    let mut request = app.client.request(method.clone(), format!("{}{path}", app.http));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
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

/// `method path` with a JSON body, waiting for the job's outcome.
pub(crate) async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Value,
) -> anyhow::Result<ApiResponse> {
    send(app, method, path, Some(token), Some(&body), &[WAIT]).await
}

/// The fields a 422 lists, as (field, code).
pub(crate) fn invalid_fields(r: &ApiResponse) -> Vec<(String, String)> {
    r.body["details"]["fields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .map(|f| {
                    (
                        f["field"].as_str().unwrap_or_default().to_string(),
                        f["code"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// RFC 3339 in UTC with milliseconds and `Z`.
pub(crate) fn assert_millis_z(value: &Value, what: &str) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value}"));
    assert!(
        chrono::DateTime::parse_from_rfc3339(text).is_ok(),
        "{what} is not RFC 3339: {text}"
    );
    let fraction = text.strip_suffix('Z').and_then(|t| t.rsplit_once('.')).map(|(_, f)| f);
    assert!(
        fraction.is_some_and(|f| f.len() == 3),
        "{what} lacks milliseconds and Z: {text}"
    );
}

/// The seeded efectivo usuario's unit, freed of every asignación and
/// `disponible`, so a test starts from a known state.
async fn own_unit(app: &TestApp) -> anyhow::Result<i64> {
    let id: i64 = sqlx::query_scalar("SELECT id FROM efectivos WHERE usuario_id = $1 AND deleted_at IS NULL")
        .bind(app.efectivo.id)
        .fetch_one(&app.db)
        .await?;
    sqlx::query("DELETE FROM tarea_efectivos WHERE efectivo_id = $1")
        .bind(id)
        .execute(&app.db)
        .await?;
    sqlx::query("UPDATE efectivos SET disponibilidad = 'disponible' WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await?;
    Ok(id)
}

/// A live unit other than `not`, with a position.
async fn other_unit(app: &TestApp, not: i64) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM efectivos WHERE id <> $1 AND deleted_at IS NULL AND ubicacion IS NOT NULL ORDER BY id LIMIT 1",
    )
    .bind(not)
    .fetch_one(&app.db)
    .await?)
}

/// Makes `efectivo` held: an accepted asignación on an en_curso tarea.
async fn hold(app: &TestApp, efectivo: i64) -> anyhow::Result<i64> {
    let tarea: i64 = sqlx::query_scalar(
        "SELECT id FROM tareas WHERE estado = 'en_curso' AND deleted_at IS NULL ORDER BY id LIMIT 1",
    )
    .fetch_one(&app.db)
    .await?;
    sqlx::query("INSERT INTO tarea_efectivos (tarea_id, efectivo_id, respuesta) VALUES ($1, $2, 'aceptada') ON CONFLICT DO NOTHING")
        .bind(tarea)
        .bind(efectivo)
        .execute(&app.db)
        .await?;
    sqlx::query("UPDATE efectivos SET disponibilidad = 'en_tarea' WHERE id = $1")
        .bind(efectivo)
        .execute(&app.db)
        .await?;
    Ok(tarea)
}

fn assert_efectivo_shape(e: &Value) {
    for key in [
        "id",
        "uuid",
        "usuario_id",
        "codigo_interno",
        "rango",
        "unidad",
        "especialidad",
        "disponibilidad",
        "ultima_actualizacion_estado",
        "lat",
        "lng",
        "ubicacion_actualizada_en",
        "created_at",
        "updated_at",
    ] {
        assert!(e.get(key).is_some(), "Efectivo lacks {key}: {e}");
    }
    assert_eq!(e.as_object().map(|o| o.len()), Some(14), "unexpected keys: {e}");
    assert_millis_z(&e["created_at"], "created_at");
    assert_millis_z(&e["ultima_actualizacion_estado"], "ultima_actualizacion_estado");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_follow_the_role_matrix() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let own = own_unit(&app).await?;
    let other = other_unit(&app, own).await?;
    let (n1, n2, n3) = (&app.efectivo.token, &app.supervisor.token, &app.admin.token);

    let r = app.get("/api/v1/efectivos", None).await?;
    assert_error(&r, StatusCode::UNAUTHORIZED, "not_authenticated");
    let r = app.get("/api/v1/efectivos", Some(n1)).await?;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    for token in [n2, n3] {
        let r = app.get("/api/v1/efectivos?limit=7&skip=3", Some(token)).await?;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let rows = r.body.as_array().cloned().unwrap_or_default();
        assert_eq!(rows.len(), 7);
        assert_efectivo_shape(&rows[0]);
        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM efectivos WHERE deleted_at IS NULL")
            .fetch_one(&app.db)
            .await?;
        assert_eq!(r.header("x-total-count"), Some(total.to_string().as_str()));
        let ids: Vec<i64> = rows.iter().filter_map(|e| e["id"].as_i64()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "not ordered by id: {ids:?}");
    }
    // Filters agree with SQL.
    let r = app
        .get("/api/v1/efectivos?disponibilidad=fuera_servicio&limit=500", Some(n2))
        .await?;
    let expected: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM efectivos WHERE deleted_at IS NULL AND disponibilidad = 'fuera_servicio'",
    )
    .fetch_one(&app.db)
    .await?;
    assert_eq!(r.header("x-total-count"), Some(expected.to_string().as_str()));
    assert!(
        r.body
            .as_array()
            .is_some_and(|a| a.iter().all(|e| e["disponibilidad"] == "fuera_servicio"))
    );
    let codigo: String = sqlx::query_scalar("SELECT codigo_interno FROM efectivos WHERE id = $1")
        .bind(other)
        .fetch_one(&app.db)
        .await?;
    let r = app
        .get(&format!("/api/v1/efectivos?q={}", codigo.to_lowercase()), Some(n2))
        .await?;
    assert!(
        r.body.as_array().is_some_and(|a| a.iter().any(|e| e["id"] == other)),
        "q={codigo}: {}",
        r.text
    );
    for bad in ["limit=0", "limit=501", "skip=-1", "disponibilidad=ocupado"] {
        let r = app.get(&format!("/api/v1/efectivos?{bad}"), Some(n2)).await?;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }

    let r = app.get("/api/v1/efectivos/me", Some(n1)).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["id"], own);
    assert_eq!(r.body["usuario_id"], app.efectivo.id);
    let r = app.get("/api/v1/efectivos/me", Some(n2)).await?;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");

    let r = app.get(&format!("/api/v1/efectivos/{own}"), Some(n1)).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.get(&format!("/api/v1/efectivos/{other}"), Some(n1)).await?;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app.get("/api/v1/efectivos/999999999", Some(n1)).await?;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app.get(&format!("/api/v1/efectivos/{other}/"), Some(n2)).await?;
    assert_eq!(r.status, StatusCode::OK, "trailing slash: {}", r.text);
    // lat/lng come from the geography column.
    let (lat, lng): (f64, f64) =
        sqlx::query_as("SELECT ST_Y(ubicacion::geometry), ST_X(ubicacion::geometry) FROM efectivos WHERE id = $1")
            .bind(other)
            .fetch_one(&app.db)
            .await?;
    assert!((r.body["lat"].as_f64().unwrap_or(f64::NAN) - lat).abs() < 1e-9);
    assert!((r.body["lng"].as_f64().unwrap_or(f64::NAN) - lng).abs() < 1e-9);
    let r = app.get("/api/v1/efectivos/999999999", Some(n2)).await?;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let r = app.get("/api/v1/efectivos/abc", Some(n3)).await?;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_create_edit_and_delete_units() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let (n1, n2, n3) = (&app.efectivo.token, &app.supervisor.token, &app.admin.token);
    // A usuario without a unit: a second seeded supervisor.
    let usuario: i64 = sqlx::query_scalar(
        "SELECT u.id FROM usuarios u WHERE u.deleted_at IS NULL AND u.id <> $1
           AND NOT EXISTS (SELECT 1 FROM efectivos e WHERE e.usuario_id = u.id) ORDER BY u.id LIMIT 1",
    )
    .bind(app.supervisor.id)
    .fetch_one(&app.db)
    .await?;
    let body =
        json!({ "usuario_id": usuario, "codigo_interno": " nuevo-01 ", "rango": "Cabo", "lat": -34.6, "lng": -58.4 });
    for token in [n1, n2] {
        let r = call(&app, Method::POST, "/api/v1/efectivos", token, body.clone()).await?;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    }
    // Without Prefer a Q endpoint answers 202.
    let r = send(&app, Method::POST, "/api/v1/efectivos", Some(n3), Some(&body), &[]).await?;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let job = app
        .wait_for_job(
            r.body["job_id"].as_str().unwrap_or_default(),
            n3,
            Duration::from_secs(20),
        )
        .await?;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"]["http_status"], 201);
    let created = job["result"]["body"].clone();
    assert_efectivo_shape(&created);
    assert_eq!(created["codigo_interno"], "NUEVO-01");
    assert_eq!(created["usuario_id"], usuario);
    assert_eq!(created["disponibilidad"], "disponible");
    assert_eq!(created["lat"], -34.6);
    let id = created["id"].as_i64().unwrap_or_default();
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'efectivo_created' AND resource_id = $1 AND actor_usuario_id = $2",
    )
    .bind(id.to_string())
    .bind(app.admin.id)
    .fetch_one(&app.db)
    .await?;
    assert_eq!(audited, 1);

    // Same usuario again, or an existing codigo: 409 duplicate naming the field.
    let r = call(
        &app,
        Method::POST,
        "/api/v1/efectivos",
        n3,
        json!({ "usuario_id": usuario, "codigo_interno": "OTRO-01" }),
    )
    .await?;
    assert_error(&r, StatusCode::CONFLICT, "duplicate");
    assert_eq!(r.body["details"]["field"], "usuario_id");
    let other_usuario: i64 = sqlx::query_scalar(
        "SELECT u.id FROM usuarios u WHERE u.deleted_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM efectivos e WHERE e.usuario_id = u.id) ORDER BY u.id LIMIT 1",
    )
    .fetch_one(&app.db)
    .await?;
    let r = call(
        &app,
        Method::POST,
        "/api/v1/efectivos",
        n3,
        json!({ "usuario_id": other_usuario, "codigo_interno": "nuevo-01" }),
    )
    .await?;
    assert_error(&r, StatusCode::CONFLICT, "duplicate");
    assert_eq!(r.body["details"]["field"], "codigo_interno");
    let r = call(
        &app,
        Method::POST,
        "/api/v1/efectivos",
        n3,
        json!({ "usuario_id": 999_999_999, "codigo_interno": "X-99" }),
    )
    .await?;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        invalid_fields(&r),
        [("usuario_id".to_string(), "not_found".to_string())]
    );
    let r = call(
        &app,
        Method::POST,
        "/api/v1/efectivos",
        n3,
        json!({ "codigo_interno": "a b", "rango": "x".repeat(51), "lat": 91, "unidad": 3 }),
    )
    .await?;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let fields: Vec<String> = invalid_fields(&r).into_iter().map(|(f, _)| f).collect();
    for f in ["usuario_id", "codigo_interno", "rango", "unidad", "lat", "lng"] {
        assert!(fields.iter().any(|x| x == f), "{f} not reported: {fields:?}");
    }

    // Edit: partial, null clears, nivel 3 only.
    let path = format!("/api/v1/efectivos/{id}");
    let r = call(&app, Method::PUT, &path, n2, json!({ "unidad": "Norte" })).await?;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = call(
        &app,
        Method::PUT,
        &path,
        n3,
        json!({ "unidad": "Norte", "rango": null }),
    )
    .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["unidad"], "Norte");
    assert_eq!(r.body["rango"], Value::Null);
    assert_eq!(r.body["codigo_interno"], "NUEVO-01");
    let r = call(&app, Method::PUT, &path, n3, json!({})).await?;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let taken: String = sqlx::query_scalar("SELECT codigo_interno FROM efectivos WHERE id <> $1 ORDER BY id LIMIT 1")
        .bind(id)
        .fetch_one(&app.db)
        .await?;
    let r = call(&app, Method::PUT, &path, n3, json!({ "codigo_interno": taken })).await?;
    assert_error(&r, StatusCode::CONFLICT, "duplicate");
    let r = call(
        &app,
        Method::PUT,
        "/api/v1/efectivos/999999999",
        n3,
        json!({ "unidad": "Sur" }),
    )
    .await?;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");

    // Delete: refused while held, then soft.
    hold(&app, id).await?;
    let r = send(&app, Method::DELETE, &path, Some(n2), None, &[WAIT]).await?;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = send(&app, Method::DELETE, &path, Some(n3), None, &[WAIT]).await?;
    assert_error(&r, StatusCode::CONFLICT, "efectivo_held");
    sqlx::query("DELETE FROM tarea_efectivos WHERE efectivo_id = $1")
        .bind(id)
        .execute(&app.db)
        .await?;
    let r = send(&app, Method::DELETE, &path, Some(n3), None, &[WAIT]).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["id"], id);
    let deleted: bool = sqlx::query_scalar("SELECT deleted_at IS NOT NULL FROM efectivos WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await?;
    assert!(deleted, "the row must stay, soft-deleted");
    let r = app.get(&path, Some(n3)).await?;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let r = send(&app, Method::DELETE, &path, Some(n3), None, &[WAIT]).await?;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    app.stop().await
}

#[derive(Debug, sqlx::FromRow, PartialEq)]
struct StoredPosition {
    lat: Option<f64>,
    lng: Option<f64>,
    ubicacion_actualizada_en: Option<chrono::DateTime<chrono::Utc>>,
    ubicacion_precision_m: Option<f32>,
}

async fn stored_position(app: &TestApp, id: i64) -> anyhow::Result<StoredPosition> {
    Ok(sqlx::query_as(
        "SELECT ST_Y(ubicacion::geometry) AS lat, ST_X(ubicacion::geometry) AS lng, ubicacion_actualizada_en,
                ubicacion_precision_m FROM efectivos WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await?)
}

async fn location_events(app: &TestApp, id: i64) -> anyhow::Result<Vec<Value>> {
    Ok(sqlx::query_scalar(
        "SELECT payload FROM outbox_events WHERE event_type = 'efectivo_location_update' AND (payload->>'efectivo_id')::bigint = $1
         ORDER BY id",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn location_updates_match_the_database_and_older_ones_are_ignored() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let own = own_unit(&app).await?;
    let other = other_unit(&app, own).await?;
    let path = format!("/api/v1/efectivos/{own}/location");
    let t1 = chrono::Utc::now() - chrono::Duration::seconds(30);
    let t1_text = t1.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);

    let r = call(
        &app,
        Method::PUT,
        &path,
        &app.efectivo.token,
        json!({ "lat": -34.61, "lng": -58.42, "accuracy_m": 12.5, "recorded_at": t1_text }),
    )
    .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let stored = stored_position(&app, own).await?;
    assert_eq!(r.body.as_object().map(|o| o.len()), Some(4), "{}", r.text);
    assert_eq!(r.body["efectivo_id"], own);
    assert!((r.body["lat"].as_f64().unwrap_or(f64::NAN) - stored.lat.unwrap_or(f64::NAN)).abs() < 1e-12);
    assert!((r.body["lng"].as_f64().unwrap_or(f64::NAN) - stored.lng.unwrap_or(f64::NAN)).abs() < 1e-12);
    assert!(
        (stored.lat.unwrap_or_default() + 34.61).abs() < 1e-9 && (stored.lng.unwrap_or_default() + 58.42).abs() < 1e-9
    );
    assert_eq!(stored.ubicacion_precision_m, Some(12.5));
    assert_eq!(r.body["ubicacion_actualizada_en"], t1_text.as_str());
    assert_eq!(
        stored.ubicacion_actualizada_en.map(|t| t.timestamp_millis()),
        Some(t1.timestamp_millis())
    );
    let events = location_events(&app, own).await?;
    assert_eq!(events.len(), 1, "the first update is announced at once: {events:?}");
    assert_eq!(events[0]["lat"], -34.61);
    assert_eq!(events[0]["recorded_at"], t1_text.as_str());
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE resource_type = 'efectivo' AND resource_id = $1")
            .bind(own.to_string())
            .fetch_one(&app.db)
            .await?;
    assert_eq!(audited, 0, "location updates are not audited");

    // An update recorded earlier than the stored one arrives late: ignored.
    let t0 = (t1 - chrono::Duration::seconds(10)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let r = call(
        &app,
        Method::PUT,
        &path,
        &app.efectivo.token,
        json!({ "lat": -34.70, "lng": -58.50, "recorded_at": t0 }),
    )
    .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["lat"], -34.61, "the stored position stays: {}", r.text);
    assert_eq!(r.body["ubicacion_actualizada_en"], t1_text.as_str());
    let after = stored_position(&app, own).await?;
    assert_eq!(after, stored, "an older update changed the row");

    // A newer one inside the 2 s window is stored at once and announced when the window ends.
    let r = call(
        &app,
        Method::PUT,
        &path,
        &app.efectivo.token,
        json!({ "lat": -34.62, "lng": -58.43 }),
    )
    .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["lat"], -34.62);
    let now = stored_position(&app, own).await?;
    assert!(now.ubicacion_actualizada_en > stored.ubicacion_actualizada_en);
    assert_eq!(now.ubicacion_precision_m, None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let events = loop {
        let events = location_events(&app, own).await?;
        if events.len() >= 2 {
            break events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the coalesced update was never announced: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1]["lat"], -34.62);

    // Supervisors may move any unit; a nivel 1 usuario only its own.
    let r = call(
        &app,
        Method::PUT,
        &format!("/api/v1/efectivos/{other}/location"),
        &app.efectivo.token,
        json!({ "lat": 1, "lng": 1 }),
    )
    .await?;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = call(
        &app,
        Method::PUT,
        &format!("/api/v1/efectivos/{other}/location"),
        &app.supervisor.token,
        json!({ "lat": -34.5, "lng": -58.5 }),
    )
    .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = call(
        &app,
        Method::PUT,
        "/api/v1/efectivos/999999999/location",
        &app.supervisor.token,
        json!({ "lat": 1, "lng": 1 }),
    )
    .await?;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");

    // §7: every invalid field at once.
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let cases = [
        (
            json!({ "lat": 91, "lng": -181, "accuracy_m": 10001 }),
            vec!["lat", "lng", "accuracy_m"],
        ),
        (
            json!({ "lat": "x", "accuracy_m": -1 }),
            vec!["lat", "lng", "accuracy_m"],
        ),
        (
            json!({ "lat": 1, "lng": 1, "recorded_at": "2026-01-01T10:00:00" }),
            vec!["recorded_at"],
        ),
        (
            json!({ "lat": 1, "lng": 1, "recorded_at": future }),
            vec!["recorded_at"],
        ),
    ];
    for (body, expected) in cases {
        let r = call(&app, Method::PUT, &path, &app.efectivo.token, body.clone()).await?;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        let fields: Vec<String> = invalid_fields(&r).into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, expected, "{body}");
    }
    let r = call(
        &app,
        Method::PUT,
        &path,
        &app.efectivo.token,
        json!({ "lat": 1, "lng": 1, "recorded_at": "2026-01-01T10:00:00" }),
    )
    .await?;
    assert_eq!(
        invalid_fields(&r),
        [("recorded_at".to_string(), "naive_timestamp".to_string())]
    );
    let r = app
        .client
        .put(format!("{}{path}", app.http))
        .bearer_auth(&app.efectivo.token)
        .header("content-type", "text/plain")
        .body("lat=1")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disponibilidad_rules_events_and_audit() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let own = own_unit(&app).await?;
    let other = other_unit(&app, own).await?;
    let path = format!("/api/v1/efectivos/{own}/disponibilidad");
    let n1 = &app.efectivo.token;

    let r = call(
        &app,
        Method::PUT,
        &path,
        n1,
        json!({ "disponibilidad": "fuera_servicio", "motivo": "fin de turno" }),
    )
    .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_efectivo_shape(&r.body);
    assert_eq!(r.body["disponibilidad"], "fuera_servicio");
    let event: Value = sqlx::query_scalar(
        "SELECT payload FROM outbox_events WHERE event_type = 'efectivo_status_changed' AND (payload->>'efectivo_id')::bigint = $1
         ORDER BY id DESC LIMIT 1",
    )
    .bind(own)
    .fetch_one(&app.db)
    .await?;
    assert_eq!(
        event,
        json!({ "efectivo_id": own, "disponibilidad_anterior": "disponible", "disponibilidad": "fuera_servicio", "motivo": "fin de turno" })
    );
    let topics: Vec<String> = sqlx::query_scalar(
        "SELECT topics FROM outbox_events WHERE event_type = 'efectivo_status_changed' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&app.db)
    .await?;
    assert_eq!(topics, ["efectivos".to_string(), format!("efectivos.{own}")]);
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'disponibilidad_changed' AND resource_id = $1 AND actor_usuario_id = $2",
    )
    .bind(own.to_string())
    .bind(app.efectivo.id)
    .fetch_one(&app.db)
    .await?;
    assert_eq!(audited, 1);

    // en_tarea belongs to the system; other units are not the caller's.
    let r = call(&app, Method::PUT, &path, n1, json!({ "disponibilidad": "en_tarea" })).await?;
    assert_error(&r, StatusCode::CONFLICT, "managed_state");
    let r = call(
        &app,
        Method::PUT,
        &format!("/api/v1/efectivos/{other}/disponibilidad"),
        n1,
        json!({ "disponibilidad": "disponible" }),
    )
    .await?;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = call(
        &app,
        Method::PUT,
        &path,
        n1,
        json!({ "disponibilidad": "ocupado", "motivo": "x".repeat(501) }),
    )
    .await?;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let fields: Vec<String> = invalid_fields(&r).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["disponibilidad", "motivo"]);

    // Held: the unit may not leave its task; a supervisor may take it out of service.
    let tarea = hold(&app, own).await?;
    let r = call(
        &app,
        Method::PUT,
        &path,
        n1,
        json!({ "disponibilidad": "no_disponible" }),
    )
    .await?;
    assert_error(&r, StatusCode::CONFLICT, "efectivo_held");
    let r = call(
        &app,
        Method::PUT,
        &path,
        &app.supervisor.token,
        json!({ "disponibilidad": "fuera_servicio", "motivo": "avería" }),
    )
    .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["disponibilidad"], "fuera_servicio");
    let still_assigned: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tarea_efectivos WHERE tarea_id = $1 AND efectivo_id = $2")
            .bind(tarea)
            .bind(own)
            .fetch_one(&app.db)
            .await?;
    assert_eq!(still_assigned, 1, "its asignaciones stay");
    let alert: Value = sqlx::query_scalar(
        "SELECT payload FROM outbox_events WHERE event_type = 'alert' AND 'alerts' = ANY(topics) ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&app.db)
    .await?;
    assert_eq!(alert["efectivo_id"], own);
    assert_eq!(alert["tarea_id"], tarea);
    // Back in service while held means back on the task.
    let r = call(
        &app,
        Method::PUT,
        &path,
        &app.supervisor.token,
        json!({ "disponibilidad": "disponible" }),
    )
    .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["disponibilidad"], "en_tarea");
    app.stop().await
}
