//! A supervisor's day on the board: the seeded units on the map in their
//! colours, an emergency dispatched by clicking on the map, the unit turning
//! busy and the task appearing without a reload, then the task worked to
//! the end and the unit free again.

use anyhow::{Context, ensure};
use gad_e2e::browser::Browser;
use gad_e2e::{SEED_PASSWORD, TestApp};
use serde_json::json;

use super::{WITHIN, finish, ids_of, load_id, log_in, open, wait_live};

#[tokio::test]
async fn a_supervisor_dispatches_an_emergency_by_clicking_the_map_and_finishes_it() -> anyhow::Result<()> {
    let (app, mut browser) = open("board_page_dispatcher").await?;
    let outcome = scenario(&app, &mut browser).await;
    finish(app, browser, outcome).await
}

async fn scenario(app: &TestApp, browser: &mut Browser) -> anyhow::Result<()> {
    log_in(browser, app, &app.supervisor.email, SEED_PASSWORD).await?;
    wait_live(browser).await?;

    // Every located unit is drawn, in the colour of its disponibilidad.
    let by_state: Vec<(String, i64)> = sqlx::query_as(
        "SELECT disponibilidad::text, count(*) FROM efectivos
         WHERE deleted_at IS NULL AND ubicacion IS NOT NULL GROUP BY 1",
    )
    .fetch_all(&app.db)
    .await?;
    let located: i64 = by_state.iter().map(|(_, n)| n).sum();
    ensure!(located > 100, "the seed has {located} located efectivos");
    ensure!(browser.count("circle.efectivo").await? == usize::try_from(located)?);
    for (state, n) in &by_state {
        let drawn = browser.count(&format!("circle.efectivo.d-{state}")).await?;
        ensure!(
            drawn == usize::try_from(*n)?,
            "{drawn} dots drawn {state}, {n} in the database"
        );
    }
    ensure!(browser.count("tr.task").await? > 0, "the task list is empty");
    browser.screenshot("map").await?;
    let loaded = load_id(browser).await?;

    // Click on a free unit's dot with the emergency button armed.
    let (target,): (i64,) = sqlx::query_as(
        "SELECT id FROM efectivos WHERE deleted_at IS NULL AND ubicacion IS NOT NULL
         AND disponibilidad = 'disponible' ORDER BY id LIMIT 1",
    )
    .fetch_one(&app.db)
    .await?;
    let free_before = ids_of(browser, "circle.efectivo.d-disponible").await?;
    browser.wait_for("#emergency-toggle", WITHIN).await?.click().await?;
    browser.wait_for("#map.armed", WITHIN).await?;
    let (x, y) = centre_of(browser, &format!("circle.efectivo[data-id='{target}']")).await?;
    browser.click_at(x, y).await?;

    let result = browser
        .wait_for("#dispatch-result[data-state='assigned']", WITHIN)
        .await?;
    let assigned: i64 = result
        .attr("data-efectivo-id")
        .await?
        .context("no unit in the result")?
        .parse()?;
    let tarea: i64 = result
        .attr("data-tarea-id")
        .await?
        .context("no tarea in the result")?
        .parse()?;
    let shown = result.text().await?;
    ensure!(
        free_before.contains(&assigned),
        "unit {assigned} was not free on the map"
    );
    ensure!(shown.contains(" m"), "the result does not show the distance: {shown}");

    // The point dispatched is where the click was: the clicked unit's spot.
    let (tipo, off_m, codigo): (String, f64, String) = sqlx::query_as(
        "SELECT t.tipo::text, ST_Distance(t.ubicacion, e.ubicacion), t.codigo FROM tareas t, efectivos e
         WHERE t.id = $1 AND e.id = $2",
    )
    .bind(tarea)
    .bind(target)
    .fetch_one(&app.db)
    .await?;
    ensure!(tipo == "emergencia");
    ensure!(off_m < 150.0, "the emergency is {off_m:.0} m from the clicked unit");
    ensure!(shown.contains(&codigo), "the result does not name {codigo}: {shown}");

    // The unit changes colour and the task appears, both from the live feed.
    let dot = format!("circle.efectivo[data-id='{assigned}']");
    browser.wait_for(&format!("{dot}.d-en_tarea"), WITHIN).await?;
    let row = format!("tr.task[data-id='{tarea}']");
    browser
        .wait_for(&format!("{row}[data-estado='programada']"), WITHIN)
        .await?;
    browser
        .wait_for("#alerts li.alert[data-kind='emergency_created']", WITHIN)
        .await?;
    ensure!(load_id(browser).await? == loaded, "the page reloaded");
    browser.screenshot("dispatched").await?;

    // The list narrowed to critical tasks: the emergency among them, nothing else.
    browser
        .wait_for("#filter-prioridad", WITHIN)
        .await?
        .select_by_value("5")
        .await?;
    browser
        .wait_until(
            "every listed task is critical",
            WITHIN,
            &format!(
                "const rows = [...document.querySelectorAll('tr.task')];
         return rows.some((r) => r.dataset.id === '{tarea}') && rows.every((r) => r.querySelector('.prio.p-5'));"
            ),
        )
        .await?;
    browser.screenshot("critical-only").await?;
    browser
        .wait_for("#filter-prioridad", WITHIN)
        .await?
        .select_by_value("")
        .await?;

    // Worked to the end from the task list.
    browser
        .wait_for(&format!("{row} button[data-action='start']"), WITHIN)
        .await?
        .click()
        .await?;
    browser
        .wait_for(&format!("{row}[data-estado='en_curso']"), WITHIN)
        .await?;
    browser
        .wait_for(&format!("{row} button[data-action='finish']"), WITHIN)
        .await?
        .click()
        .await?;
    browser
        .wait_for(&format!("{row}[data-estado='finalizada']"), WITHIN)
        .await?;
    let (estado,): (String,) = sqlx::query_as("SELECT estado::text FROM tareas WHERE id = $1")
        .bind(tarea)
        .fetch_one(&app.db)
        .await?;
    ensure!(estado == "finalizada", "the task is {estado} in the database");
    browser.wait_for(&format!("{dot}.d-disponible"), WITHIN).await?;
    ensure!(load_id(browser).await? == loaded, "the page reloaded");
    browser.screenshot("finished").await?;
    Ok(())
}

/// The viewport position of an element's centre.
async fn centre_of(browser: &Browser, css: &str) -> anyhow::Result<(f64, f64)> {
    let at = browser
        .eval(
            "const r = document.querySelector(arguments[0]).getBoundingClientRect();
             return [r.x + r.width / 2, r.y + r.height / 2];",
            vec![json!(css)],
        )
        .await?;
    match (at[0].as_f64(), at[1].as_f64()) {
        (Some(x), Some(y)) => Ok((x, y)),
        _ => anyhow::bail!("no position for {css}: {at}"),
    }
}
