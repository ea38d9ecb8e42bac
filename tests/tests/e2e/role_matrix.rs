//! One table: every endpoint of domain.md §6.3 × anonymous and nivel 1, 2
//! and 3, with the status class each must get. "Allowed" means the role
//! check let the request through; what happens next (200, 201, 409 for a
//! repeated transition, 404 for a notification that does not exist) is the
//! business of each endpoint's own tests.

use gad_e2e::{ApiResponse, SEED_PASSWORD, TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::auth::{Body, send};

/// What a role must get from an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// 401: no (valid) token.
    Unauth,
    /// 403: authenticated, but nivel too low or not self.
    Denied,
    /// 404: a nivel 1 caller asking for someone else's task or job (§3).
    Hidden,
    /// Past the role check: neither 401, 403 nor a server error.
    Allowed,
    /// 410 for everyone: removed legacy endpoints.
    Gone,
    /// Not served to this role (401, 403 or 404): the operators' view, which
    /// another issue delivers, and answering an asignación one does not hold.
    Refused,
}

use Expect::{Allowed as A, Denied as D, Gone as G, Hidden as H, Refused as R, Unauth as U};

/// Callers in table order: anonymous, nivel 1, 2, 3.
const ROLES: [&str; 4] = ["anonymous", "nivel 1", "nivel 2", "nivel 3"];

struct Row {
    method: Method,
    path: String,
    body: Option<Value>,
    expect: [Expect; 4],
    /// Served by the broadcaster rather than ingress.
    broadcaster: bool,
}

fn row(method: Method, path: impl Into<String>, body: Option<Value>, expect: [Expect; 4]) -> Row {
    Row {
        method,
        path: path.into(),
        body,
        expect,
        broadcaster: false,
    }
}

fn matches(expect: Expect, status: StatusCode) -> bool {
    match expect {
        Expect::Unauth => status == StatusCode::UNAUTHORIZED,
        Expect::Denied => status == StatusCode::FORBIDDEN,
        Expect::Hidden => status == StatusCode::NOT_FOUND,
        Expect::Gone => status == StatusCode::GONE,
        Expect::Refused => matches!(status.as_u16(), 401 | 403 | 404),
        Expect::Allowed => {
            !matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) && !status.is_server_error()
        }
    }
}

/// A task created by the supervisor, delegated to `delegado`, with `assigned` units.
async fn task(app: &TestApp, delegado: i64, assigned: &[i64]) -> anyhow::Result<i64> {
    let mut body = json!({
        "codigo": format!("RM-{:08X}", rand::random::<u32>()),
        "titulo": "Tarea de la matriz",
        "tipo": "patrullaje",
        "inicio_programado": gad_shared::time::format(&(chrono::Utc::now() + chrono::Duration::hours(1))),
        "delegado_usuario_id": delegado,
    });
    if !assigned.is_empty() {
        body["efectivos_asignados"] = json!(assigned);
    }
    let r = send(
        app,
        Method::POST,
        "/api/v1/tasks",
        Some(&app.supervisor.token),
        Body::Json(&body),
        &[("prefer", "wait=15")],
    )
    .await?;
    anyhow::ensure!(r.status == StatusCode::CREATED, "task: {} {}", r.status, r.text);
    r.body["id"]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("no id: {}", r.text))
}

/// Seeded nivel 1 usuarios other than the test's own, with their efectivos.
async fn others(app: &TestApp, n: i64) -> anyhow::Result<Vec<(i64, i64)>> {
    Ok(sqlx::query_as(
        "SELECT u.id, e.id FROM usuarios u JOIN efectivos e ON e.usuario_id = u.id
         WHERE u.nivel = 1 AND u.id <> $1 AND u.deleted_at IS NULL AND e.deleted_at IS NULL
           AND e.disponibilidad = 'disponible' AND e.ubicacion IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM tarea_efectivos te WHERE te.efectivo_id = e.id)
         ORDER BY u.id LIMIT $2",
    )
    .bind(app.efectivo.id)
    .bind(n)
    .fetch_all(&app.db)
    .await?)
}

async fn call(app: &TestApp, row: &Row, token: Option<&str>) -> anyhow::Result<ApiResponse> {
    let body = row.body.as_ref().map_or(Body::None, Body::Json);
    if !row.broadcaster {
        return send(
            app,
            row.method.clone(),
            &row.path,
            token,
            body,
            &[("prefer", "wait=15")],
        )
        .await;
    }
    let base = app.ws.as_deref().unwrap_or_default().replacen("ws://", "http://", 1);
    let mut request = app.client.request(row.method.clone(), format!("{base}{}", row.path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await?;
    Ok(ApiResponse {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_each_role_as_section_6_3_says() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let (me, sup, adm) = (app.efectivo.id, app.supervisor.id, app.admin.id);
    let own_unit: i64 = sqlx::query_scalar("SELECT id FROM efectivos WHERE usuario_id = $1")
        .bind(me)
        .fetch_one(&app.db)
        .await?;
    let spare = others(&app, 3).await?;
    anyhow::ensure!(spare.len() == 3, "not enough free seeded units");
    let (other, other_unit) = spare[0];
    let (doomed_user, _) = spare[1];
    let (_, doomed_unit) = spare[2];

    let own_task = task(&app, me, &[own_unit]).await?;
    let other_task = task(&app, sup, &[]).await?;
    let doomed_task = task(&app, sup, &[]).await?;
    let cancelled_task = task(&app, sup, &[]).await?;
    let answer_task = task(&app, sup, &[own_unit]).await?;
    let job: String =
        sqlx::query_scalar("SELECT job_id::text FROM jobs WHERE submitted_by = $1 ORDER BY created_at LIMIT 1")
            .bind(sup)
            .fetch_one(&app.db)
            .await?;
    let new_user = |n: u32| {
        json!({ "email": format!("matriz{n}@example.org"), "password": "password-matriz-1",
                "nombre": "Matriz", "apellido": "Roles", "dni": format!("MAT{n:05}") })
    };
    let new_task = |delegado: i64| {
        json!({ "codigo": format!("RM-{:08X}", rand::random::<u32>()), "titulo": "Tarea de la matriz",
                "tipo": "patrullaje", "inicio_programado": gad_shared::time::format(&(chrono::Utc::now() + chrono::Duration::hours(2))),
                "delegado_usuario_id": delegado })
    };
    let point = json!({ "lat": -34.6037, "lng": -58.3816, "reporter": { "nombre": "Vecina" } });
    let login = json!({ "username": "efectivo1@seed.invalid", "password": SEED_PASSWORD });

    use Method as M;
    let rows = vec![
        row(M::GET, "/health", None, [A, A, A, A]),
        row(M::GET, "/health/ready", None, [A, A, A, A]),
        row(M::POST, "/api/v1/auth/login", Some(login), [A, A, A, A]),
        row(M::POST, "/api/v1/auth/refresh", None, [U, A, A, A]),
        // usuarios, and the alias kept for the old admin panel
        row(M::GET, "/api/v1/users", None, [U, D, A, A]),
        row(M::GET, "/api/v1/usuarios", None, [U, D, A, A]),
        row(M::POST, "/api/v1/users", Some(new_user(1)), [U, D, D, A]),
        row(M::POST, "/api/v1/usuarios", Some(new_user(2)), [U, D, D, A]),
        row(M::GET, "/api/v1/users/me", None, [U, A, A, A]),
        row(M::GET, format!("/api/v1/users/{me}"), None, [U, A, A, A]),
        row(M::GET, format!("/api/v1/users/{other}"), None, [U, D, A, A]),
        row(M::GET, format!("/api/v1/usuarios/{other}"), None, [U, D, A, A]),
        row(
            M::PUT,
            "/api/v1/users/me/preferences",
            Some(json!({ "notif_supervision": false })),
            [U, A, A, A],
        ),
        row(
            M::POST,
            format!("/api/v1/users/{other}/unlock"),
            Some(json!({})),
            [U, D, D, A],
        ),
        row(
            M::PUT,
            format!("/api/v1/users/{me}"),
            Some(json!({ "telefono": "+54 11 4000-0000" })),
            [U, A, D, A],
        ),
        row(
            M::PUT,
            format!("/api/v1/users/{other}"),
            Some(json!({ "nombre": "Otro" })),
            [U, D, D, A],
        ),
        row(M::DELETE, format!("/api/v1/users/{doomed_user}"), None, [U, D, D, A]),
        // efectivos
        row(M::GET, "/api/v1/efectivos", None, [U, D, A, A]),
        row(
            M::POST,
            "/api/v1/efectivos",
            Some(json!({ "usuario_id": adm, "codigo_interno": "MATRIZ-01" })),
            [U, D, D, A],
        ),
        row(M::GET, "/api/v1/efectivos/me", None, [U, A, A, A]),
        row(M::GET, format!("/api/v1/efectivos/{own_unit}"), None, [U, A, A, A]),
        row(M::GET, format!("/api/v1/efectivos/{other_unit}"), None, [U, D, A, A]),
        row(
            M::PUT,
            format!("/api/v1/efectivos/{other_unit}"),
            Some(json!({ "rango": "Cabo" })),
            [U, D, D, A],
        ),
        row(
            M::DELETE,
            format!("/api/v1/efectivos/{doomed_unit}"),
            None,
            [U, D, D, A],
        ),
        row(
            M::PUT,
            format!("/api/v1/efectivos/{own_unit}/location"),
            Some(json!({ "lat": -34.6, "lng": -58.4 })),
            [U, A, A, A],
        ),
        row(
            M::PUT,
            format!("/api/v1/efectivos/{other_unit}/location"),
            Some(json!({ "lat": -34.6, "lng": -58.4 })),
            [U, D, A, A],
        ),
        row(
            M::PUT,
            format!("/api/v1/efectivos/{own_unit}/disponibilidad"),
            Some(json!({ "disponibilidad": "disponible" })),
            [U, A, A, A],
        ),
        row(
            M::PUT,
            format!("/api/v1/efectivos/{other_unit}/disponibilidad"),
            Some(json!({ "disponibilidad": "disponible" })),
            [U, D, A, A],
        ),
        // tareas
        row(M::GET, "/api/v1/tasks", None, [U, A, A, A]),
        row(M::POST, "/api/v1/tasks", Some(new_task(sup)), [U, D, A, A]),
        row(M::POST, "/api/v1/tasks", Some(new_task(me)), [U, A, A, A]),
        row(M::GET, format!("/api/v1/tasks/{own_task}"), None, [U, A, A, A]),
        row(M::GET, format!("/api/v1/tasks/{other_task}"), None, [U, H, A, A]),
        row(
            M::PUT,
            format!("/api/v1/tasks/{own_task}"),
            Some(json!({ "titulo": "Titulo cambiado" })),
            [U, D, A, A],
        ),
        row(
            M::PATCH,
            format!("/api/v1/tasks/{own_task}"),
            Some(json!({ "prioridad": 3 })),
            [U, D, A, A],
        ),
        row(M::DELETE, format!("/api/v1/tasks/{doomed_task}"), None, [U, D, A, A]),
        row(
            M::POST,
            format!("/api/v1/tasks/{own_task}/start"),
            Some(json!({})),
            [U, A, A, A],
        ),
        row(
            M::POST,
            format!("/api/v1/tasks/{own_task}/pause"),
            Some(json!({})),
            [U, A, A, A],
        ),
        row(
            M::POST,
            format!("/api/v1/tasks/{own_task}/resume"),
            Some(json!({})),
            [U, A, A, A],
        ),
        row(
            M::POST,
            format!("/api/v1/tasks/{other_task}/start"),
            Some(json!({})),
            [U, H, A, A],
        ),
        row(
            M::POST,
            format!("/api/v1/tasks/{cancelled_task}/cancel"),
            Some(json!({ "motivo": "matriz" })),
            [U, D, A, A],
        ),
        row(
            M::POST,
            format!("/api/v1/tasks/{other_task}/assign"),
            Some(json!({ "efectivo_ids": [other_unit] })),
            [U, D, A, A],
        ),
        row(
            M::POST,
            format!("/api/v1/tasks/{other_task}/unassign"),
            Some(json!({ "efectivo_ids": [other_unit] })),
            [U, D, A, A],
        ),
        row(
            M::POST,
            format!("/api/v1/tasks/{answer_task}/respond"),
            Some(json!({ "respuesta": "aceptada" })),
            [U, A, R, R],
        ),
        row(M::GET, format!("/api/v1/tasks/{own_task}/history"), None, [U, A, A, A]),
        row(
            M::GET,
            format!("/api/v1/tasks/{other_task}/history"),
            None,
            [U, H, A, A],
        ),
        row(
            M::POST,
            format!("/api/v1/tasks/{own_task}/finish"),
            Some(json!({})),
            [U, A, A, A],
        ),
        row(M::POST, "/api/v1/tasks/emergency", Some(point), [U, A, A, A]),
        // geo
        row(
            M::GET,
            "/api/v1/geo/map/view?center_lat=-34.6&center_lng=-58.4&radius_m=1000&limit=5",
            None,
            [U, D, A, A],
        ),
        row(
            M::GET,
            "/api/v1/geo/nearest?lat=-34.6&lng=-58.4&k=3",
            None,
            [U, D, A, A],
        ),
        // stats
        row(M::GET, format!("/api/v1/stats/user/{me}"), None, [U, A, A, A]),
        row(M::GET, format!("/api/v1/stats/user/{other}"), None, [U, D, A, A]),
        row(
            M::POST,
            format!("/api/v1/stats/invalidate/user/{me}"),
            None,
            [U, A, A, A],
        ),
        row(
            M::POST,
            format!("/api/v1/stats/invalidate/user/{other}"),
            None,
            [U, D, A, A],
        ),
        // telegram
        row(M::POST, "/api/v1/telegram/link-code", None, [U, A, A, A]),
        row(M::DELETE, "/api/v1/telegram/link", None, [U, A, A, A]),
        row(M::DELETE, format!("/api/v1/telegram/link/{other}"), None, [U, D, D, A]),
        row(M::POST, "/api/v1/telegram/auth/login", None, [G, G, G, G]),
        // jobs
        row(M::GET, "/api/v1/jobs", None, [U, A, A, A]),
        row(M::GET, format!("/api/v1/jobs/{job}"), None, [U, H, A, A]),
        row(M::POST, format!("/api/v1/jobs/{job}/cancel"), None, [U, H, A, A]),
        // notifications
        row(M::GET, "/api/v1/notifications", None, [U, A, A, A]),
        row(
            M::POST,
            format!("/api/v1/notifications/{}/ack", uuid::Uuid::new_v4()),
            None,
            [U, A, A, A],
        ),
        // administration
        row(M::GET, "/api/v1/admin/audit", None, [U, D, D, A]),
        row(M::GET, "/api/v1/admin/ops", None, [R, R, R, A]),
        row(M::GET, "/api/v1/admin/dlq", None, [U, D, D, A]),
        row(M::POST, format!("/api/v1/admin/dlq/{job}/replay"), None, [U, D, D, A]),
        row(M::POST, format!("/api/v1/admin/dlq/{job}/discard"), None, [U, D, D, A]),
        Row {
            broadcaster: true,
            ..row(M::GET, "/ws/stats", None, [U, D, D, A])
        },
        // Last: it ends each caller's token.
        row(M::POST, "/api/v1/auth/logout", None, [U, A, A, A]),
    ];

    let tokens = [
        None,
        Some(&app.efectivo.token),
        Some(&app.supervisor.token),
        Some(&app.admin.token),
    ];
    let mut wrong = Vec::new();
    for row in &rows {
        for (i, token) in tokens.iter().enumerate() {
            let r = call(&app, row, token.map(String::as_str)).await?;
            if !matches(row.expect[i], r.status) {
                wrong.push(format!(
                    "{} {} as {}: expected {:?}, got {} {}",
                    row.method, row.path, ROLES[i], row.expect[i], r.status, r.text
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} answers wrong:\n{}",
        wrong.len(),
        rows.len() * 4,
        wrong.join("\n")
    );
    app.stop().await
}
