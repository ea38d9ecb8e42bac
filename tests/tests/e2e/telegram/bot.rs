//! The bot through teloxide's long polling against the fake Bot API: unknown
//! chats get only the linking text, `/start CODE` links, the `/crear` wizard
//! creates the tarea through the real job, `/finalizar` finishes one.

use gad_e2e::fake_telegram::Call;
use gad_e2e::spawn_app_with_telegram;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::support::{STEP, callback_data, fake_of, fresh_chat, link, reply, to_chat};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_chat_gets_only_the_linking_text() -> anyhow::Result<()> {
    let app = spawn_app_with_telegram().await?;
    let fake = fake_of(&app).await?;
    let chat = fresh_chat();
    for text in ["/crear", "/finalizar", "/historial", "hola", "/start no-es-un-codigo"] {
        fake.push_text(chat, text);
    }
    fake.push_callback(chat, 1, "f:1:yes");
    // The callback's answer can come after the sixth message: wait for both.
    let calls = fake
        .wait_for(STEP, |calls| {
            calls
                .iter()
                .filter(|c| c.chat_id() == Some(chat) && c.method == "sendMessage")
                .count()
                >= 6
                && calls.iter().any(|c| c.method == "answerCallbackQuery")
        })
        .await?;
    let texts: Vec<&str> = calls
        .iter()
        .filter(|c| c.chat_id() == Some(chat) && c.method == "sendMessage")
        .filter_map(Call::text)
        .collect();
    let linking = texts[0];
    assert!(linking.contains("/start"), "{linking}");
    for (i, t) in texts.iter().enumerate() {
        if i == 4 {
            assert!(
                t.contains("código no es válido"),
                "a bad code says so and nothing more: {t}"
            );
        } else {
            assert_eq!(*t, linking, "only the linking text, to every message");
        }
    }
    assert!(
        calls
            .iter()
            .all(|c| c.chat_id() != Some(chat) || c.body.get("reply_markup").is_none()),
        "no buttons, no data"
    );
    assert!(
        calls.iter().any(|c| c.method == "answerCallbackQuery"),
        "the callback is answered too"
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linking_then_the_crear_wizard_creates_the_tarea() -> anyhow::Result<()> {
    let app = spawn_app_with_telegram().await?;
    let fake = fake_of(&app).await?;
    let chat = fresh_chat();
    let user = app.efectivo.clone();

    let r = app
        .client
        .post(format!("{}/api/v1/telegram/link-code", app.http))
        .bearer_auth(&user.token)
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::CREATED);
    let code = r.json::<Value>().await?["code"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    let n = to_chat(fake, chat);
    fake.push_text(chat, &format!("/start {code}"));
    reply(fake, chat, n, "Tu cuenta está vinculada").await?;
    let linked: Option<i64> = sqlx::query_scalar("SELECT telegram_id FROM usuarios WHERE id = $1")
        .bind(user.id)
        .fetch_one(&app.db)
        .await?;
    assert_eq!(linked, Some(chat));

    let n = to_chat(fake, chat);
    fake.push_text(chat, "/crear");
    let step1 = reply(fake, chat, n, "Paso 1/7").await?;
    let tipos = callback_data(&step1.body);
    assert!(tipos.contains(&"w:tipo:patrullaje".to_string()), "{tipos:?}");
    assert!(
        !tipos.iter().any(|t| t.ends_with("emergencia")),
        "no emergencias from the bot"
    );

    let n = to_chat(fake, chat);
    fake.push_callback(chat, step1.message_id.unwrap_or(1), "w:tipo:patrullaje");
    reply(fake, chat, n, "Paso 2/7").await?;
    // An invalid codigo asks the same step again.
    let n = to_chat(fake, chat);
    fake.push_text(chat, "x");
    reply(fake, chat, n, "Paso 2/7").await?;
    let codigo = format!("BOT-{:06X}", rand::random::<u32>() % 0xFFFFFF);
    let n = to_chat(fake, chat);
    fake.push_text(chat, &codigo.to_lowercase());
    reply(fake, chat, n, "Paso 3/7").await?;
    let n = to_chat(fake, chat);
    fake.push_text(chat, "Control <vehicular> & más");
    let step4 = reply(fake, chat, n, "Paso 4/7").await?;
    let n = to_chat(fake, chat);
    fake.push_callback(chat, step4.message_id.unwrap_or(1), "w:desc:skip");
    reply(fake, chat, n, "Paso 5/7").await?;
    let n = to_chat(fake, chat);
    fake.push_location(chat, -34.6037, -58.3816);
    let step6 = reply(fake, chat, n, "Paso 6/7").await?;
    let n = to_chat(fake, chat);
    fake.push_callback(chat, step6.message_id.unwrap_or(1), "w:prio:4");
    let step7 = reply(fake, chat, n, "Paso 7/7").await?;
    assert!(
        step7
            .text()
            .unwrap_or_default()
            .contains("Control &lt;vehicular&gt; &amp; más")
    );
    let buttons = callback_data(&step7.body);
    assert_eq!(
        buttons,
        ["w:confirm:yes", "w:confirm:no"],
        "distinct Confirmar / Cancelar"
    );

    let n = to_chat(fake, chat);
    fake.push_callback(chat, step7.message_id.unwrap_or(1), "w:confirm:yes");
    let done = reply(fake, chat, n, "Tarea creada").await?;
    assert!(done.text().unwrap_or_default().contains(&codigo), "{:?}", done.text());

    let (origen, delegado, prioridad, tipo, located): (String, i64, i16, String, bool) = sqlx::query_as(
        "SELECT origen::text, delegado_usuario_id, prioridad, tipo::text, ubicacion IS NOT NULL FROM tareas WHERE codigo = $1",
    )
    .bind(&codigo)
    .fetch_one(&app.db)
    .await?;
    assert_eq!(
        (origen.as_str(), delegado, prioridad, tipo.as_str(), located),
        ("telegram", user.id, 4, "patrullaje", true)
    );
    let answered = fake
        .calls()
        .iter()
        .filter(|c| c.method == "answerCallbackQuery" && c.ok())
        .count();
    assert!(answered >= 4, "every button press is answered ({answered})");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizar_lists_own_running_tasks_and_finishes_the_one_picked() -> anyhow::Result<()> {
    let app = spawn_app_with_telegram().await?;
    let fake = fake_of(&app).await?;
    let chat = fresh_chat();
    let user = app.efectivo.clone();
    link(&app, user.id, chat).await?;
    // A task delegated to the usuario, started.
    let codigo = format!("FIN-{:06X}", rand::random::<u32>() % 0xFFFFFF);
    let body = json!({
        "codigo": codigo, "titulo": "Tarea a finalizar", "tipo": "patrullaje",
        "inicio_programado": gad_shared::time::format(&chrono::Utc::now()),
        "delegado_usuario_id": user.id,
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
    let id = created["id"]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("create: {created}"))?;
    let r = app
        .client
        .post(format!("{}/api/v1/tasks/{id}/start", app.http))
        .bearer_auth(&app.supervisor.token)
        .header("Prefer", "wait=20")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await?);

    let n = to_chat(fake, chat);
    fake.push_text(chat, "/finalizar");
    let list = reply(fake, chat, n, "Elegí la tarea a finalizar").await?;
    let pick = format!("f:{id}:pick");
    assert!(
        callback_data(&list.body).contains(&pick),
        "{:?}",
        callback_data(&list.body)
    );
    let message_id = list.message_id.unwrap_or(1);

    let n = to_chat(fake, chat);
    fake.push_callback(chat, message_id, &pick);
    let confirm = reply(fake, chat, n, "¿Finalizar").await?;
    assert_eq!(
        callback_data(&confirm.body),
        [format!("f:{id}:yes"), format!("f:{id}:no")]
    );

    let n = to_chat(fake, chat);
    fake.push_callback(chat, message_id, &format!("f:{id}:yes"));
    reply(fake, chat, n, "Tarea finalizada").await?;
    let estado: String = sqlx::query_scalar("SELECT estado::text FROM tareas WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await?;
    assert_eq!(estado, "finalizada");
    app.stop().await
}
