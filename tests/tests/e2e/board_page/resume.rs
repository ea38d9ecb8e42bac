//! The live feed after a lost connection: what changed while the board was
//! cut off arrives when it reconnects, resumed from its last seq rather than
//! reloaded, and the page itself never reloads.

use std::time::Duration;

use anyhow::{Context, ensure};
use chrono::Utc;
use gad_e2e::browser::Browser;
use gad_e2e::{SEED_PASSWORD, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{WITHIN, finish, load_id, log_in, open, wait_live};
use crate::auth::send_waiting;

#[tokio::test]
async fn changes_made_while_the_board_was_cut_off_arrive_on_reconnect() -> anyhow::Result<()> {
    let (app, mut browser) = open("board_page_resume").await?;
    let outcome = scenario(&app, &mut browser).await;
    finish(app, browser, outcome).await
}

async fn scenario(app: &TestApp, browser: &mut Browser) -> anyhow::Result<()> {
    let proxy = app
        .board_proxy
        .as_ref()
        .context("no proxy in front of the broadcaster")?;
    log_in(browser, app, &app.supervisor.email, SEED_PASSWORD).await?;
    wait_live(browser).await?;
    let loaded = load_id(browser).await?;
    let (unit,): (i64,) = sqlx::query_as(
        "SELECT e.id FROM efectivos e WHERE e.deleted_at IS NULL AND e.ubicacion IS NOT NULL
         AND e.disponibilidad = 'disponible' ORDER BY e.id DESC LIMIT 1",
    )
    .fetch_one(&app.db)
    .await?;
    let dot = format!("circle.efectivo[data-id='{unit}']");
    browser.wait_for(&format!("{dot}.d-disponible"), WITHIN).await?;

    proxy.set_down(true);
    browser
        .wait_for("#live-status[data-state='reconnecting']", WITHIN)
        .await?;
    let token = &app.supervisor.token;
    let changed = send_waiting(
        app,
        Method::PUT,
        &format!("/api/v1/efectivos/{unit}/disponibilidad"),
        token,
        Some(&json!({ "disponibilidad": "fuera_servicio", "motivo": "control de flota" })),
    )
    .await?;
    ensure!(changed.status == StatusCode::OK, "{}", changed.text);
    let created = send_waiting(
        app,
        Method::POST,
        "/api/v1/tasks",
        token,
        Some(&json!({
            "codigo": format!("RSM-{}", rand::random::<u32>() % 1_000_000),
            "titulo": "Vigilancia durante el corte",
            "tipo": "vigilancia",
            "prioridad": 5,
            "inicio_programado": (Utc::now() + chrono::Duration::hours(2)).to_rfc3339(),
            "delegado_usuario_id": app.supervisor.id,
            "ubicacion_lat": -34.6083,
            "ubicacion_lon": -58.3712,
        })),
    )
    .await?;
    ensure!(created.status == StatusCode::CREATED, "{}", created.text);
    let tarea = created.body["id"].as_i64().context("no id")?;
    // Cut off, the board cannot know yet.
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure!(
        browser.count(&format!("{dot}.d-fuera_servicio")).await? == 0,
        "a change got through the cut"
    );
    browser.screenshot("cut-off").await?;

    proxy.set_down(false);
    wait_live(browser).await?;
    browser.wait_for(&format!("{dot}.d-fuera_servicio"), WITHIN).await?;
    browser.wait_for(&format!("tr.task[data-id='{tarea}']"), WITHIN).await?;
    browser
        .wait_for(&format!("rect.tarea[data-id='{tarea}'].p-5"), WITHIN)
        .await?;
    let resyncs = browser
        .eval("return document.documentElement.dataset.resyncs || '0';", vec![])
        .await?;
    ensure!(
        resyncs == json!("0"),
        "the board reloaded its data ({resyncs} resyncs) instead of resuming"
    );
    ensure!(load_id(browser).await? == loaded, "the page reloaded");
    browser.screenshot("resumed").await?;
    Ok(())
}
