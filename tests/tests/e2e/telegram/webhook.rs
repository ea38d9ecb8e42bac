//! Webhook mode (§6.3 `POST /api/v1/telegram/webhook`): the bot registers
//! ingress' URL and a secret with the fake Bot API, the fake posts scripted
//! updates there, ingress checks the secret and stores each update in
//! `GAD_TELEGRAM` once (by `update_id`) before answering 200, and the bot
//! handles them with the same handlers as long polling.

use std::time::Duration;

use gad_e2e::{TestApp, spawn_app_with_telegram_webhook};
use serde_json::json;

use super::support::{STEP, fake_of, fresh_chat, link, reply, to_chat};

async fn stored(app: &TestApp) -> anyhow::Result<u64> {
    let mut stream = app.js.get_stream(app.topology.telegram_stream()).await?;
    Ok(stream.info().await?.state.messages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_updates_are_checked_stored_once_and_handled_by_the_bot() -> anyhow::Result<()> {
    let app = spawn_app_with_telegram_webhook().await?;
    let fake = fake_of(&app).await?;
    let (url, secret) = app
        .telegram_webhook
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no webhook"))?;

    // The bot registered ingress' URL with its secret.
    let deadline = tokio::time::Instant::now() + STEP;
    while fake.webhook() != Some((url.clone(), Some(secret.clone()))) {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no setWebhook: {:?}",
            fake.webhook()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A scripted update goes fake → ingress → GAD_TELEGRAM → bot.
    let chat = fresh_chat();
    let n = to_chat(fake, chat);
    let first = fake.push_text(chat, "hola");
    reply(fake, chat, n, "/start").await?;
    let delivery = fake
        .webhook_deliveries()
        .into_iter()
        .find(|d| d.update_id() == Some(first))
        .ok_or_else(|| anyhow::anyhow!("update {first} not posted"))?;
    assert_eq!(delivery.status, 200);
    assert_eq!(stored(&app).await?, 1);

    // Telegram delivering it again: 200, and neither stored nor handled twice.
    assert_eq!(fake.post_webhook(&url, &secret, &delivery.update).await?, 200);
    assert_eq!(stored(&app).await?, 1, "deduplicated by update_id");

    // A wrong or missing secret: 401, nothing stored.
    let mut forged = delivery.update.clone();
    forged["update_id"] = json!(first + 1000);
    forged["message"]["text"] = json!("/crear");
    assert_eq!(fake.post_webhook(&url, "not-the-secret", &forged).await?, 401);
    let missing = app.client.post(&url).json(&forged).send().await?;
    assert_eq!(missing.status().as_u16(), 401);
    // Not an update at all: refused, nothing stored.
    let bad = app
        .client
        .post(&url)
        .header("X-Telegram-Bot-Api-Secret-Token", &secret)
        .json(&json!({ "hola": 1 }))
        .send()
        .await?;
    assert_eq!(bad.status().as_u16(), 422);
    assert_eq!(stored(&app).await?, 1);

    // Stored before the 200: an update posted directly is in the stream
    // as soon as ingress has answered.
    let mut direct = delivery.update.clone();
    direct["update_id"] = json!(first + 2000);
    direct["message"]["text"] = json!("chau");
    assert_eq!(fake.post_webhook(&url, &secret, &direct).await?, 200);
    assert_eq!(stored(&app).await?, 2);

    // Handled in order and once each: "hola", then "chau"; the duplicate
    // and the forged update got no answer.
    let n = to_chat(fake, chat);
    fake.push_text(chat, "/start no-es-un-codigo");
    reply(fake, chat, n, "código no es válido").await?;
    let texts: Vec<String> = fake
        .sent_to("sendMessage", chat)
        .iter()
        .filter_map(|c| c.text().map(str::to_string))
        .collect();
    assert_eq!(texts.len(), 3, "{texts:#?}");

    // A linked usuario's command and button through the same handlers.
    let linked = fresh_chat();
    link(&app, app.efectivo.id, linked).await?;
    let n = to_chat(fake, linked);
    fake.push_text(linked, "/historial");
    reply(fake, linked, n, "").await?;
    fake.push_callback(linked, 1, "h:todas:c");
    fake.wait_for(STEP, |calls| {
        calls.iter().any(|c| c.method == "answerCallbackQuery" && c.ok())
    })
    .await?;
    app.stop().await
}
