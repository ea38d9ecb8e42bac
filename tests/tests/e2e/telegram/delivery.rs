//! A notification row reaches its chat once, escaped, with its buttons, and
//! its `telegram_message_id` is kept; a chat that blocked the bot makes the
//! row `undeliverable` and raises a `delivery_failed` alert.

use std::time::Duration;

use gad_e2e::spawn_app_with_telegram;
use reqwest::StatusCode;
use serde_json::json;

use super::support::{callback_data, link, linked_usuarios, notification, settled};

const WITHIN: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assignment_reaches_the_assignees_chat_escaped_and_with_its_buttons() -> anyhow::Result<()> {
    let app = spawn_app_with_telegram().await?;
    let fake = app
        .telegram
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no fake telegram"))?;
    // A unit whose usuario linked a chat.
    let (efectivo_id, usuario_id): (i64, i64) = sqlx::query_as(
        "SELECT e.id, u.id FROM efectivos e JOIN usuarios u ON u.id = e.usuario_id
          WHERE e.disponibilidad = 'disponible' AND e.deleted_at IS NULL AND u.deleted_at IS NULL
            AND u.verificado AND u.telegram_id IS NULL
            AND NOT EXISTS (SELECT 1 FROM tarea_efectivos te WHERE te.efectivo_id = e.id)
          ORDER BY e.id DESC LIMIT 1",
    )
    .fetch_one(&app.db)
    .await?;
    let chat = 700_000_000 + i64::from(rand::random::<u32>() % 100_000_000);
    link(&app, usuario_id, chat).await?;

    let codigo = format!("TG-{:08X}", rand::random::<u32>());
    let body = json!({
        "codigo": codigo,
        "titulo": "Ronda <norte> & sur",
        "tipo": "patrullaje",
        "inicio_programado": gad_shared::time::format(&(chrono::Utc::now() + chrono::Duration::hours(1))),
        "delegado_usuario_id": app.supervisor.id,
        "efectivos_asignados": [efectivo_id],
    });
    let r = app
        .client
        .post(format!("{}/api/v1/tasks", app.http))
        .bearer_auth(&app.supervisor.token)
        .header("Prefer", "wait=20")
        .json(&body)
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await?);

    let calls = fake
        .wait_for(WITHIN, |calls| {
            calls
                .iter()
                .any(|c| c.method == "sendMessage" && c.ok() && c.chat_id() == Some(chat))
        })
        .await?;
    let sent: Vec<_> = calls
        .iter()
        .filter(|c| c.method == "sendMessage" && c.chat_id() == Some(chat))
        .collect();
    assert_eq!(sent.len(), 1, "one message to the assignee: {sent:?}");
    let call = sent[0];
    assert_eq!(call.body["parse_mode"], "HTML");
    let text = call.text().unwrap_or_default();
    assert!(text.contains("Ronda &lt;norte&gt; &amp; sur"), "escaped: {text}");
    assert!(!text.contains("<norte>"), "nothing interpolated unescaped: {text}");

    let (id, status, message_id): (uuid::Uuid, String, Option<i64>) = sqlx::query_as(
        "SELECT n.id, n.status::text, n.telegram_message_id FROM notifications n JOIN tareas t ON t.id = n.tarea_id
          WHERE t.codigo = $1 AND n.channel = 'telegram' AND n.kind = 'task_assigned'",
    )
    .bind(&codigo)
    .fetch_one(&app.db)
    .await?;
    let rows = settled(&app, &[id], WITHIN).await?;
    assert_eq!(rows[0].1, "sent", "{status} then {:?}", rows[0]);
    assert_eq!(
        rows[0].2, call.message_id,
        "telegram_message_id stored (was {message_id:?})"
    );
    assert_eq!(
        callback_data(&call.body),
        [format!("n:{id}:a"), format!("n:{id}:r")],
        "Aceptar / Rechazar carry the notification"
    );

    // Nothing else is ever sent for it: a redelivered or republished message finds the row sent.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(fake.sent_to("sendMessage", chat).len(), 1);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_that_blocked_the_bot_is_undeliverable_and_supervisors_are_alerted() -> anyhow::Result<()> {
    let app = spawn_app_with_telegram().await?;
    let fake = app
        .telegram
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no fake telegram"))?;
    let linked = linked_usuarios(&app, 2).await?;
    let (blocked_user, blocked_chat) = linked[0];
    let (fine_user, fine_chat) = linked[1];
    fake.block_chat(blocked_chat);

    let blocked = notification(&app, blocked_user, 0, "al bloqueado").await?;
    let fine = notification(&app, fine_user, 0, "al otro").await?;
    let rows = settled(&app, &[blocked, fine], WITHIN).await?;
    let status = |id| rows.iter().find(|r| r.0 == id).map(|r| r.1.clone()).unwrap_or_default();
    assert_eq!(status(blocked), "undeliverable");
    assert_eq!(status(fine), "sent");
    let attempts = fake
        .calls()
        .into_iter()
        .filter(|c| c.method == "sendMessage" && c.chat_id() == Some(blocked_chat))
        .count();
    assert_eq!(attempts, 1, "a 403 is not retried");
    assert_eq!(fake.sent_to("sendMessage", fine_chat).len(), 1);

    let alert: serde_json::Value = sqlx::query_scalar(
        "SELECT payload FROM outbox_events WHERE event_type = 'alert' AND payload->>'kind' = 'delivery_failed'",
    )
    .fetch_one(&app.db)
    .await?;
    assert_eq!(alert["usuario_id"], blocked_user);
    let supervisors_told: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE kind = 'delivery_failed' AND channel = 'websocket'",
    )
    .fetch_one(&app.db)
    .await?;
    assert!(supervisors_told >= 1, "supervisors get the alert");
    app.stop().await
}
