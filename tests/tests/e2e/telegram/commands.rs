//! The §9.2 commands beyond the wizard and `/finalizar`, through teloxide
//! and the fake Bot API: `/ayuda` lists them, `/historial` pages the
//! usuario's own tasks (◀ ▶ Cerrar, filters), `/estadisticas` shows the
//! figures `GET /api/v1/stats/user/{me}?days=30` answers, every command is in
//! Telegram's command menu, and `/cancelar` leaves the `/crear` wizard.

use gad_e2e::TestApp;
use gad_e2e::spawn_app_with_telegram;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::support::{STEP, callback_data, fake_of, fresh_chat, link, reply, to_chat};

/// Creates a task delegated to `delegado` (as the supervisor); its id.
async fn task(app: &TestApp, delegado: i64, codigo: &str) -> anyhow::Result<i64> {
    let body = json!({
        "codigo": codigo, "titulo": format!("Tarea <{codigo}> & co"), "tipo": "patrullaje",
        "inicio_programado": gad_shared::time::format(&chrono::Utc::now()),
        "delegado_usuario_id": delegado,
    });
    let created: Value = app
        .client
        .post(format!("{}/api/v1/tasks", app.http))
        .bearer_auth(&app.supervisor.token)
        .header("Prefer", "wait=20")
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    created["id"]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("create: {created}"))
}

async fn transition(app: &TestApp, id: i64, accion: &str) -> anyhow::Result<()> {
    let r = app
        .client
        .post(format!("{}/api/v1/tasks/{id}/{accion}", app.http))
        .bearer_auth(&app.supervisor.token)
        .header("Prefer", "wait=20")
        .send()
        .await?;
    anyhow::ensure!(r.status() == StatusCode::OK, "{accion}: {}", r.text().await?);
    Ok(())
}

/// Tasks `/historial` must list for a nivel-1 usuario: delegated or assigned.
async fn own_tasks(app: &TestApp, usuario: i64, estados: &[&str]) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM tareas t WHERE t.deleted_at IS NULL AND t.estado::text = ANY($2)
            AND (t.delegado_usuario_id = $1 OR EXISTS (SELECT 1 FROM tarea_efectivos te
                 JOIN efectivos e ON e.id = te.efectivo_id WHERE te.tarea_id = t.id AND e.usuario_id = $1))",
    )
    .bind(usuario)
    .bind(estados)
    .fetch_one(&app.db)
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn historial_pages_own_tasks_and_estadisticas_match_the_api() -> anyhow::Result<()> {
    let app = spawn_app_with_telegram().await?;
    let fake = fake_of(&app).await?;
    let chat = fresh_chat();
    let user = app.efectivo.clone();
    link(&app, user.id, chat).await?;
    let tag = format!("{:05X}", rand::random::<u32>() % 0xFFFFF);
    let mut codigos = Vec::new();
    for i in 0..11 {
        let codigo = format!("H{tag}-{i:02}");
        let id = task(&app, user.id, &codigo).await?;
        if i == 0 {
            transition(&app, id, "start").await?;
            transition(&app, id, "finish").await?;
        }
        codigos.push(codigo);
    }
    let newest = codigos.last().cloned().unwrap_or_default();

    // /ayuda names every command.
    let n = to_chat(fake, chat);
    fake.push_text(chat, "/ayuda");
    let help = reply(fake, chat, n, "Comandos disponibles").await?;
    for command in [
        "/crear",
        "/finalizar",
        "/historial",
        "/estadisticas",
        "/cancelar",
        "/ayuda",
    ] {
        assert!(help.text().unwrap_or_default().contains(command), "{command} missing");
    }

    // /historial: newest first, ten per page, escaped, with working arrows.
    let total = own_tasks(
        &app,
        user.id,
        &["programada", "en_curso", "pausada", "finalizada", "cancelada"],
    )
    .await?;
    let pages = (total + 9) / 10;
    assert!(pages >= 2, "{total} own tasks");
    let n = to_chat(fake, chat);
    fake.push_text(chat, "/historial");
    let first = reply(fake, chat, n, "Historial (todas)").await?;
    let text = first.text().unwrap_or_default().to_string();
    assert!(text.contains(&format!("página 1 de {pages}, {total} tareas")), "{text}");
    assert_eq!(text.matches('•').count(), 10, "ten per page: {text}");
    let first_line = text.split('•').nth(1).unwrap_or_default();
    assert!(first_line.contains(&newest), "newest first: {text}");
    assert!(
        text.contains(&format!("Tarea &lt;{newest}&gt; &amp; co")),
        "escaped: {text}"
    );
    assert_eq!(callback_data(&first.body), ["h:todas:1", "h:todas:c"]);
    let message = first.message_id.unwrap_or(1);

    let n = to_chat(fake, chat);
    fake.push_callback(chat, message, "h:todas:1");
    let second = reply(fake, chat, n, "página 2").await?;
    assert_eq!(second.method, "editMessageText", "the arrows edit the list in place");
    let buttons = callback_data(&second.body);
    assert_eq!(buttons.first().map(String::as_str), Some("h:todas:0"), "{buttons:?}");
    assert_eq!(buttons.last().map(String::as_str), Some("h:todas:c"), "{buttons:?}");

    let n = to_chat(fake, chat);
    fake.push_callback(chat, message, "h:todas:c");
    let closed = reply(fake, chat, n, "Historial cerrado").await?;
    assert!(callback_data(&closed.body).is_empty(), "Cerrar removes the buttons");

    // Filters.
    let finalizadas = own_tasks(&app, user.id, &["finalizada"]).await?;
    let n = to_chat(fake, chat);
    fake.push_text(chat, "/historial finalizadas");
    let done = reply(fake, chat, n, "Historial (finalizadas)").await?;
    let text = done.text().unwrap_or_default();
    assert!(text.contains(&format!("{finalizadas} tareas")), "{text}");
    assert!(text.contains(&codigos[0]) && !text.contains(&newest), "{text}");
    let n = to_chat(fake, chat);
    fake.push_text(chat, "/historial activas");
    let active = reply(fake, chat, n, "Historial (activas)").await?;
    let text = active.text().unwrap_or_default();
    assert!(text.contains(&newest) && !text.contains(&codigos[0]), "{text}");
    let n = to_chat(fake, chat);
    fake.push_text(chat, "/historial cualquiera");
    reply(fake, chat, n, "Uso: /historial").await?;

    // /estadisticas: the API's figures for the same usuario.
    let api: Value = app
        .client
        .get(format!(
            "{}/api/v1/stats/user/{}?days=30&use_cache=false",
            app.http, user.id
        ))
        .bearer_auth(&user.token)
        .send()
        .await?
        .json()
        .await?;
    let n = to_chat(fake, chat);
    fake.push_text(chat, "/estadisticas");
    let stats = reply(fake, chat, n, "Tus estadísticas").await?;
    let text = stats.text().unwrap_or_default();
    for (label, field) in [
        ("Total", "total"),
        ("Finalizadas", "completadas"),
        ("En curso", "en_progreso"),
        ("Programadas", "programadas"),
    ] {
        let line = format!("{label}: {}\n", api[field]);
        assert!(text.contains(&line), "{line:?} in {text}");
    }
    assert!(api["completadas"].as_i64() >= Some(1), "{api}");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_menu_lists_every_command_and_cancelar_leaves_the_wizard() -> anyhow::Result<()> {
    let app = spawn_app_with_telegram().await?;
    let fake = fake_of(&app).await?;

    // Registered as Telegram's command menu at start.
    let calls = fake
        .wait_for(STEP, |calls| {
            calls.iter().any(|c| c.method == "setMyCommands" && c.ok())
        })
        .await?;
    let registered: Vec<String> = calls
        .iter()
        .filter(|c| c.method == "setMyCommands")
        .flat_map(|c| c.body["commands"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["command"].as_str().map(str::to_string))
        .collect();
    for command in [
        "start",
        "ayuda",
        "help",
        "crear",
        "finalizar",
        "historial",
        "estadisticas",
        "cancelar",
    ] {
        assert!(
            registered.iter().any(|r| r == command),
            "{command} not in {registered:?}"
        );
    }

    let chat = fresh_chat();
    link(&app, app.efectivo.id, chat).await?;
    let n = to_chat(fake, chat);
    fake.push_text(chat, "/help");
    reply(fake, chat, n, "Comandos disponibles").await?;

    // /cancelar in the middle of /crear: the wizard's state is gone.
    let n = to_chat(fake, chat);
    fake.push_text(chat, "/crear");
    let step1 = reply(fake, chat, n, "Paso 1/7").await?;
    let n = to_chat(fake, chat);
    fake.push_callback(chat, step1.message_id.unwrap_or(1), "w:tipo:patrullaje");
    reply(fake, chat, n, "Paso 2/7").await?;
    let n = to_chat(fake, chat);
    fake.push_text(chat, "/cancelar");
    reply(fake, chat, n, "Operación cancelada").await?;
    let n = to_chat(fake, chat);
    fake.push_text(chat, "CAN-001");
    reply(fake, chat, n, "No hay ninguna operación en curso").await?;
    let n = to_chat(fake, chat);
    fake.push_callback(chat, step1.message_id.unwrap_or(1), "w:tipo:patrullaje");
    fake.wait_for(STEP, |calls| {
        calls
            .iter()
            .any(|c| c.method == "answerCallbackQuery" && c.body["text"] == "Esta acción ya no está vigente")
    })
    .await?;
    assert_eq!(to_chat(fake, chat), n, "a stale wizard button sends nothing");
    app.stop().await
}
