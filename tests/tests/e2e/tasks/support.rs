//! What the task tests share: requests that wait for the job's outcome,
//! task bodies with unique codigos, fresh units and their usuarios.

use anyhow::Context;
use gad_e2e::users::SeedUser;
use gad_e2e::{ApiResponse, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Every queued request here waits for its job, so the answer is the outcome.
pub const WAIT: &str = "wait=20";

pub async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> anyhow::Result<ApiResponse> {
    let mut request = app
        .client
        .request(method.clone(), format!("{}{path}", app.http))
        .bearer_auth(token)
        .header("Prefer", WAIT);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.with_context(|| format!("{method} {path}"))?;
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

pub async fn get(app: &TestApp, path: &str, token: &str) -> anyhow::Result<ApiResponse> {
    send(app, Method::GET, path, token, None).await
}

/// A codigo no other test run uses: `<prefix>-<8 hex>`.
pub fn codigo(prefix: &str) -> String {
    format!("{prefix}-{:08X}", rand::random::<u32>())
}

/// RFC 3339 UTC with `Z`, `minutes` from now.
pub fn at(minutes: i64) -> String {
    gad_shared::time::format(&(chrono::Utc::now() + chrono::Duration::minutes(minutes)))
}

/// A valid create body delegated to `delegado`, scheduled in an hour.
pub fn body(delegado: i64) -> Value {
    json!({
        "codigo": codigo("T"),
        "titulo": "Patrullaje de prueba",
        "tipo": "patrullaje",
        "inicio_programado": at(60),
        "delegado_usuario_id": delegado,
    })
}

/// `POST /api/v1/tasks`, asserting 201; the created Tarea.
pub async fn create(app: &TestApp, token: &str, body: &Value) -> anyhow::Result<Value> {
    let r = send(app, Method::POST, "/api/v1/tasks", token, Some(body)).await?;
    anyhow::ensure!(r.status == StatusCode::CREATED, "create: {} {}", r.status, r.text);
    Ok(r.body)
}

/// `POST /api/v1/tasks/{id}/{accion}` with an optional motivo.
pub async fn act(
    app: &TestApp,
    token: &str,
    id: i64,
    accion: &str,
    motivo: Option<&str>,
) -> anyhow::Result<ApiResponse> {
    let body = json!({ "motivo": motivo });
    send(
        app,
        Method::POST,
        &format!("/api/v1/tasks/{id}/{accion}"),
        token,
        Some(&body),
    )
    .await
}

/// `act`, asserting 200; the Tarea after it.
pub async fn act_ok(app: &TestApp, token: &str, id: i64, accion: &str, motivo: Option<&str>) -> anyhow::Result<Value> {
    let r = act(app, token, id, accion, motivo).await?;
    anyhow::ensure!(r.status == StatusCode::OK, "{accion} on {id}: {} {}", r.status, r.text);
    Ok(r.body)
}

pub fn id_of(tarea: &Value) -> i64 {
    tarea["id"].as_i64().unwrap_or_else(|| panic!("no id in {tarea}"))
}

/// A seeded efectivo and its usuario, with a token.
#[derive(Debug, Clone)]
pub struct Unit {
    pub efectivo_id: i64,
    pub user: SeedUser,
}

/// `n` live `disponible` units with no asignación at all, so nothing in the
/// seed holds them or makes their tasks "own" by accident.
pub async fn free_units(app: &TestApp, n: i64) -> anyhow::Result<Vec<Unit>> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT e.id, u.email FROM efectivos e JOIN usuarios u ON u.id = e.usuario_id
         WHERE e.disponibilidad = 'disponible' AND e.deleted_at IS NULL AND u.deleted_at IS NULL AND u.verificado
           AND NOT EXISTS (SELECT 1 FROM tarea_efectivos te WHERE te.efectivo_id = e.id)
           AND u.email <> 'efectivo1@seed.invalid'
         ORDER BY e.id DESC LIMIT $1",
    )
    .bind(n)
    .fetch_all(&app.db)
    .await?;
    anyhow::ensure!(rows.len() as i64 == n, "only {} free units in the seed", rows.len());
    let mut units = Vec::new();
    for (efectivo_id, email) in rows {
        units.push(Unit {
            efectivo_id,
            user: SeedUser::load(&app.db, &app.isolation.auth, &email).await?,
        });
    }
    Ok(units)
}

/// The efectivo of the seeded `efectivo1` login.
pub async fn efectivo_of(app: &TestApp, usuario_id: i64) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT id FROM efectivos WHERE usuario_id = $1")
        .bind(usuario_id)
        .fetch_one(&app.db)
        .await?)
}

pub async fn disponibilidad(app: &TestApp, efectivo_id: i64) -> anyhow::Result<String> {
    Ok(
        sqlx::query_scalar("SELECT disponibilidad::text FROM efectivos WHERE id = $1")
            .bind(efectivo_id)
            .fetch_one(&app.db)
            .await?,
    )
}

/// `(estado_anterior, estado_nuevo)` of the tarea's history, oldest first.
pub async fn path_of(app: &TestApp, token: &str, id: i64) -> anyhow::Result<Vec<(Option<String>, String)>> {
    let r = get(app, &format!("/api/v1/tasks/{id}/history"), token).await?;
    anyhow::ensure!(r.status == StatusCode::OK, "history: {} {}", r.status, r.text);
    let rows = r.body.as_array().cloned().unwrap_or_default();
    Ok(rows
        .iter()
        .map(|h| {
            (
                h["estado_anterior"].as_str().map(str::to_string),
                h["estado_nuevo"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

/// `(field, code)` pairs of a 422's `details.fields`.
pub fn field_codes(r: &ApiResponse) -> Vec<(String, String)> {
    r.body["details"]["fields"]
        .as_array()
        .map(|fs| {
            fs.iter()
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
