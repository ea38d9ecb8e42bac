//! What the Telegram tests share: linking seeded usuarios to fake chats and
//! writing notification rows the way the workers do.

use std::time::Duration;

use gad_e2e::TestApp;
use gad_e2e::fake_telegram::{Call, FakeTelegram};
use serde_json::{Value, json};
use uuid::Uuid;

/// Links `n` live nivel-1 usuarios to fresh chat ids; returns `(usuario_id, chat_id)`.
pub async fn linked_usuarios(app: &TestApp, n: i64) -> anyhow::Result<Vec<(i64, i64)>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM usuarios WHERE nivel = 1 AND deleted_at IS NULL AND telegram_id IS NULL
          ORDER BY id DESC LIMIT $1",
    )
    .bind(n)
    .fetch_all(&app.db)
    .await?;
    anyhow::ensure!(
        ids.len() as i64 == n,
        "only {} unlinked usuarios in the seed",
        ids.len()
    );
    let base = 800_000_000 + i64::from(rand::random::<u32>() % 100_000_000);
    let mut linked = Vec::new();
    for (i, id) in ids.into_iter().enumerate() {
        let chat = base + i as i64;
        link(app, id, chat).await?;
        linked.push((id, chat));
    }
    Ok(linked)
}

/// A `telegram` notification row for `usuario`, as the workers write it;
/// its text carries `marker` so the fake's record can be matched to it.
pub async fn notification(app: &TestApp, usuario: i64, priority: i16, marker: &str) -> anyhow::Result<Uuid> {
    let id = Uuid::now_v7();
    let payload = json!({ "title": "Aviso", "text": marker, "level": "info", "buttons": [] });
    sqlx::query(
        "INSERT INTO notifications (id, event_id, recipient_usuario_id, channel, kind, priority, payload)
         VALUES ($1, $2, $3, 'telegram', 'task_finished', $4, $5)",
    )
    .bind(id)
    .bind(Uuid::now_v7())
    .bind(usuario)
    .bind(priority)
    .bind(payload)
    .execute(&app.db)
    .await?;
    Ok(id)
}

/// Waits until every row in `ids` has left `pending`/`sending`; returns
/// `(id, status, telegram_message_id)` per row.
pub async fn settled(
    app: &TestApp,
    ids: &[Uuid],
    within: Duration,
) -> anyhow::Result<Vec<(Uuid, String, Option<i64>)>> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let rows: Vec<(Uuid, String, Option<i64>)> = sqlx::query_as(
            "SELECT id, status::text, telegram_message_id FROM notifications WHERE id = ANY($1) ORDER BY id",
        )
        .bind(ids)
        .fetch_all(&app.db)
        .await?;
        if rows.len() == ids.len() && rows.iter().all(|(_, s, _)| s != "pending" && s != "sending") {
            return Ok(rows);
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("notifications not settled within {within:?}: {rows:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The inline keyboard's callback data of a recorded call.
pub fn callback_data(body: &Value) -> Vec<String> {
    body["reply_markup"]["inline_keyboard"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|b| b["callback_data"].as_str().map(str::to_string))
        .collect()
}

/// How long one step of a conversation with the bot may take.
pub const STEP: Duration = Duration::from_secs(20);

/// The first message sent to `chat` after the `seen` earlier ones whose text
/// contains `needle`.
pub async fn reply(fake: &FakeTelegram, chat: i64, seen: usize, needle: &str) -> anyhow::Result<Call> {
    let matches = |c: &Call| {
        matches!(c.method.as_str(), "sendMessage" | "editMessageText")
            && c.ok()
            && c.chat_id() == Some(chat)
            && c.text().is_some_and(|t| t.contains(needle))
    };
    let calls = fake
        .wait_for(STEP, |calls| {
            calls
                .iter()
                .filter(|c| c.chat_id() == Some(chat))
                .skip(seen)
                .any(&matches)
        })
        .await?;
    calls
        .into_iter()
        .filter(|c| c.chat_id() == Some(chat))
        .skip(seen)
        .find(|c| matches(c))
        .ok_or_else(|| anyhow::anyhow!("no reply with {needle:?}"))
}

pub fn to_chat(fake: &FakeTelegram, chat: i64) -> usize {
    fake.calls().iter().filter(|c| c.chat_id() == Some(chat)).count()
}

/// Links `usuario` to Telegram chat `chat`, as a completed `/start <code>` does.
pub async fn link(app: &TestApp, usuario: i64, chat: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE usuarios SET telegram_id = $2 WHERE id = $1")
        .bind(usuario)
        .bind(chat)
        .execute(&app.db)
        .await?;
    Ok(())
}

pub fn fresh_chat() -> i64 {
    600_000_000 + i64::from(rand::random::<u32>() % 100_000_000)
}

pub async fn fake_of(app: &TestApp) -> anyhow::Result<&FakeTelegram> {
    app.telegram.as_ref().ok_or_else(|| anyhow::anyhow!("no fake telegram"))
}
