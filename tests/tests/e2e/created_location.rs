//! Every create answered synchronously is a 201 whose `Location` names the
//! new resource (domain.md §6.1), whichever resource it is, and a replay of
//! the same `Idempotency-Key` answers with the same `Location`.

use gad_e2e::{ApiResponse, TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::auth::{Body, send};

async fn create(
    app: &TestApp,
    path: &str,
    token: &str,
    body: &Value,
    key: Option<&str>,
) -> anyhow::Result<ApiResponse> {
    let mut headers = vec![("prefer", "wait=15")];
    if let Some(key) = key {
        headers.push(("idempotency-key", key));
    }
    send(app, Method::POST, path, Some(token), Body::Json(body), &headers).await
}

/// Asserts a 201 whose `Location` is `<collection>/<id>` and that the
/// location answers the same resource; returns the id.
async fn assert_created(
    app: &TestApp,
    r: &ApiResponse,
    collection: &str,
    id_field: &str,
    token: &str,
) -> anyhow::Result<i64> {
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body[id_field].as_i64().unwrap_or_default();
    let expected = format!("{collection}/{id}");
    assert_eq!(r.header("location"), Some(expected.as_str()), "{:?}", r.headers);
    let fetched = app.get(&expected, Some(token)).await?;
    assert_eq!(fetched.status, StatusCode::OK, "{}", fetched.text);
    assert_eq!(fetched.body["id"], id);
    Ok(id)
}

#[tokio::test]
async fn every_synchronous_create_carries_the_location_of_what_it_created() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let admin = app.admin.token.clone();
    let suffix = rand::random::<u32>();

    let user = json!({
        "email": format!("loc{suffix}@example.org"),
        "password": "password-location-1",
        "nombre": "Lucia",
        "apellido": "Lugar",
        "dni": format!("LOC{suffix}"),
    });
    let r = create(&app, "/api/v1/users", &admin, &user, None).await?;
    let usuario = assert_created(&app, &r, "/api/v1/users", "id", &admin).await?;

    // The alias creates the same way.
    let mut aliased = user.clone();
    aliased["email"] = json!(format!("alias{suffix}@example.org"));
    aliased["dni"] = json!(format!("ALI{suffix}"));
    let r = create(&app, "/api/v1/usuarios", &admin, &aliased, None).await?;
    assert_created(&app, &r, "/api/v1/users", "id", &admin).await?;

    let efectivo =
        json!({ "usuario_id": usuario, "codigo_interno": format!("LOC-{suffix}"), "lat": -34.6, "lng": -58.4 });
    let r = create(&app, "/api/v1/efectivos", &admin, &efectivo, None).await?;
    assert_created(&app, &r, "/api/v1/efectivos", "id", &admin).await?;

    let inicio = gad_shared::time::format(&(chrono::Utc::now() + chrono::Duration::hours(1)));
    let tarea = json!({
        "codigo": format!("LOC-{suffix:08X}"),
        "titulo": "Patrullaje con Location",
        "tipo": "patrullaje",
        "inicio_programado": inicio,
        "delegado_usuario_id": app.supervisor.id,
    });
    let key = format!("loc-{suffix}");
    let r = create(&app, "/api/v1/tasks", &app.supervisor.token, &tarea, Some(&key)).await?;
    let tarea_id = assert_created(&app, &r, "/api/v1/tasks", "id", &app.supervisor.token).await?;
    // A replay answers with the original job's outcome, Location included.
    let again = create(&app, "/api/v1/tasks", &app.supervisor.token, &tarea, Some(&key)).await?;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    assert_eq!(
        again.header("location"),
        Some(format!("/api/v1/tasks/{tarea_id}").as_str())
    );

    // A dispatch answers with its own shape; the Location is its tarea.
    let report = json!({ "lat": -34.6037, "lng": -58.3816, "reporter": { "nombre": "Vecino" } });
    let r = create(&app, "/api/v1/tasks/emergency", &app.efectivo.token, &report, None).await?;
    assert_created(&app, &r, "/api/v1/tasks", "tarea_id", &app.supervisor.token).await?;

    // Not a create: no Location on a 200.
    let r = send(
        &app,
        Method::PUT,
        &format!("/api/v1/tasks/{tarea_id}"),
        Some(&app.supervisor.token),
        Body::Json(&json!({ "titulo": "Otro titulo largo" })),
        &[("prefer", "wait=15")],
    )
    .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.header("location"), None);
    app.stop().await
}
