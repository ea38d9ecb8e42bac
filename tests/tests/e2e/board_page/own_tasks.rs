//! A field unit (nivel 1) on the board: only its own tasks, its own dot,
//! no operators' view and no cancel; a task a supervisor gives it appears
//! live through its personal topic.

use anyhow::{Context, ensure};
use chrono::Utc;
use gad_e2e::browser::Browser;
use gad_e2e::{SEED_PASSWORD, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{WITHIN, finish, ids_of, load_id, log_in, open, wait_live};
use crate::auth::{send_waiting, token_for};

#[tokio::test]
async fn a_field_unit_sees_only_its_own_tasks_and_new_ones_live() -> anyhow::Result<()> {
    let (app, mut browser) = open("board_page_own_tasks").await?;
    let outcome = scenario(&app, &mut browser).await;
    finish(app, browser, outcome).await
}

async fn scenario(app: &TestApp, browser: &mut Browser) -> anyhow::Result<()> {
    // A seeded unit that already works on several tasks, among many others'.
    let (me, email, efectivo): (i64, String, i64) = sqlx::query_as(
        "SELECT u.id, u.email, e.id FROM efectivos e JOIN usuarios u ON u.id = e.usuario_id
         WHERE u.nivel = 1 AND u.deleted_at IS NULL AND e.deleted_at IS NULL AND e.ubicacion IS NOT NULL
           AND (SELECT count(*) FROM tarea_efectivos te JOIN tareas t ON t.id = te.tarea_id
                WHERE te.efectivo_id = e.id AND te.respuesta <> 'rechazada' AND t.deleted_at IS NULL
                  AND t.estado IN ('programada', 'en_curso', 'pausada')) >= 2
         ORDER BY e.id LIMIT 1",
    )
    .fetch_one(&app.db)
    .await?;
    let token = token_for(app, &email, SEED_PASSWORD).await?;
    log_in(browser, app, &email, SEED_PASSWORD).await?;
    wait_live(browser).await?;

    // The rows are exactly the active tasks the API gives this usuario.
    let own = send_waiting(
        app,
        Method::GET,
        "/api/v1/tasks?estado=programada&estado=en_curso&estado=pausada&limit=100",
        &token,
        None,
    )
    .await?;
    ensure!(own.status == StatusCode::OK, "{}", own.text);
    let mut expected: Vec<i64> = own
        .body
        .as_array()
        .context("a list")?
        .iter()
        .filter_map(|t| t["id"].as_i64())
        .collect();
    let mut shown = ids_of(browser, "tr.task").await?;
    expected.sort_unstable();
    shown.sort_unstable();
    ensure!(expected.len() >= 2, "the API gives {} own tasks", expected.len());
    ensure!(shown == expected, "rows {shown:?}, own tasks {expected:?}");
    ensure!(
        browser.count("button[data-action='cancel']").await? == 0,
        "nivel 1 is offered cancel"
    );
    ensure!(
        !browser.wait_for("#tab-ops", WITHIN).await?.is_displayed().await?,
        "nivel 1 sees the operators' tab"
    );
    // Its own dot only, and its tasks' squares.
    ensure!(browser.count("circle.efectivo").await? == 1, "nivel 1 sees other units");
    browser
        .wait_for(&format!("circle.efectivo[data-id='{efectivo}']"), WITHIN)
        .await?;
    ensure!(browser.count("rect.tarea").await? <= expected.len());
    browser.screenshot("own-tasks").await?;
    let loaded = load_id(browser).await?;

    // A supervisor delegates a new task to this unit: it shows up at once.
    let codigo = format!("BRD-{}", rand::random::<u32>() % 1_000_000);
    let created = send_waiting(
        app,
        Method::POST,
        "/api/v1/tasks",
        &app.supervisor.token,
        Some(&json!({
            "codigo": codigo,
            "titulo": "Ronda nocturna del tablero",
            "tipo": "patrullaje",
            "prioridad": 4,
            "inicio_programado": (Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
            "delegado_usuario_id": me,
            "ubicacion_lat": -34.6037,
            "ubicacion_lon": -58.3816,
        })),
    )
    .await?;
    ensure!(created.status == StatusCode::CREATED, "{}", created.text);
    let tarea = created.body["id"].as_i64().context("no id")?;
    let row = browser.wait_for(&format!("tr.task[data-id='{tarea}']"), WITHIN).await?;
    ensure!(row.text().await?.contains(&codigo));
    browser
        .wait_for(&format!("rect.tarea[data-id='{tarea}'].p-4"), WITHIN)
        .await?;
    ensure!(load_id(browser).await? == loaded, "the page reloaded");
    browser.screenshot("assigned-live").await?;
    Ok(())
}
