//! The `notifications` rows behind Telegram sends. The row, not the NATS
//! message, decides whether a send happens: a message for a row already
//! `sent` (or acknowledged, expired, undeliverable, failed) is dropped, and a
//! row is leased (`next_attempt_at` in the future) while one replica works on
//! it, so a redelivery racing a slow send does not send twice.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// A row this replica may send now.
pub struct Claimed {
    pub id: Uuid,
    pub payload: Value,
    /// The recipient's chat; `None` when the usuario unlinked meanwhile.
    pub chat: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub attempts: i32,
}

pub enum Claim {
    Go(Claimed),
    /// Nothing to do: missing, or already past sending.
    Done,
    /// Leased by another attempt, or due later: look again after this long.
    Later(Duration),
}

/// Takes the row for `lease` if it is still to be sent and due.
pub async fn claim(db: &PgPool, id: Uuid, lease: Duration) -> Result<Claim, sqlx::Error> {
    let row: Option<(Value, Option<i64>, DateTime<Utc>, i32)> = sqlx::query_as(
        "UPDATE notifications n
            SET status = 'sending', next_attempt_at = now() + make_interval(secs => $2)
           FROM usuarios u
          WHERE n.id = $1 AND u.id = n.recipient_usuario_id AND n.channel = 'telegram'
            AND n.status IN ('pending', 'sending')
            AND (n.next_attempt_at IS NULL OR n.next_attempt_at <= now())
         RETURNING n.payload, u.telegram_id, n.created_at, n.attempts",
    )
    .bind(id)
    .bind(lease.as_secs_f64())
    .fetch_optional(db)
    .await?;
    if let Some((payload, chat, created_at, attempts)) = row {
        return Ok(Claim::Go(Claimed {
            id,
            payload,
            chat,
            created_at,
            attempts,
        }));
    }
    let due: Option<(bool, f64)> = sqlx::query_as(
        "SELECT status IN ('pending', 'sending'),
                GREATEST(EXTRACT(EPOCH FROM (next_attempt_at - now())), 0)::float8
           FROM notifications WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(match due {
        Some((true, secs)) => Claim::Later(Duration::from_secs_f64(secs.max(0.05))),
        _ => Claim::Done,
    })
}

/// Gives the lease back; the row is due again after `after`.
pub async fn release(db: &PgPool, id: Uuid, after: Duration) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notifications SET next_attempt_at = now() + make_interval(secs => $2)
          WHERE id = $1 AND status = 'sending'",
    )
    .bind(id)
    .bind(after.as_secs_f64())
    .execute(db)
    .await?;
    Ok(())
}

pub async fn sent(db: &PgPool, id: Uuid, message_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notifications
            SET status = 'sent', sent_at = now(), telegram_message_id = $2,
                attempts = attempts + 1, last_error = NULL, next_attempt_at = NULL
          WHERE id = $1",
    )
    .bind(id)
    .bind(message_id)
    .execute(db)
    .await?;
    Ok(())
}

/// One failed attempt; the row is due again after `after`.
pub async fn retry_later(db: &PgPool, id: Uuid, error: &str, after: Duration) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notifications
            SET attempts = attempts + 1, last_error = $2, next_attempt_at = now() + make_interval(secs => $3)
          WHERE id = $1 AND status = 'sending'",
    )
    .bind(id)
    .bind(error)
    .bind(after.as_secs_f64())
    .execute(db)
    .await?;
    Ok(())
}

/// Given up: `failed` (retries exhausted or refused for good).
pub async fn failed(db: &PgPool, id: Uuid, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notifications
            SET status = 'failed', attempts = attempts + 1, last_error = $2, next_attempt_at = NULL
          WHERE id = $1 AND status = 'sending'",
    )
    .bind(id)
    .bind(error)
    .execute(db)
    .await?;
    Ok(())
}

/// The chat is unreachable (the user blocked the bot): the row becomes
/// `undeliverable` and supervisors get a `delivery_failed` alert, in one
/// transaction, the alert on `alerts` through the events outbox.
pub async fn undeliverable(db: &PgPool, id: Uuid, error: &str) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    let row: Option<(i64, Option<i64>, String, String)> = sqlx::query_as(
        "UPDATE notifications n
            SET status = 'undeliverable', attempts = attempts + 1, last_error = $2, next_attempt_at = NULL
           FROM usuarios u
          WHERE n.id = $1 AND u.id = n.recipient_usuario_id AND n.status = 'sending'
         RETURNING u.id, n.tarea_id, u.nombre || ' ' || u.apellido, n.kind",
    )
    .bind(id)
    .bind(error)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((usuario_id, tarea_id, name, kind)) = row else {
        return Ok(());
    };
    // Derived from the row, so a retried transaction raises the same alert once.
    let alert_id = Uuid::new_v5(&id, b"delivery_failed");
    let title = "Notificación no entregada".to_string();
    let content = format!("Telegram rechazó el aviso «{kind}» para {name}: el usuario bloqueó el bot.");
    let data = json!({
        "alert_id": alert_id, "kind": "delivery_failed", "title": title, "content": content,
        "level": "warning", "tarea_id": tarea_id, "efectivo_id": Value::Null, "usuario_id": usuario_id,
    });
    let inserted = sqlx::query(
        "INSERT INTO outbox_events (event_id, event_type, topics, payload)
         VALUES ($1, 'alert', ARRAY['alerts'], $2) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(alert_id)
    .bind(&data)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() > 0 {
        // The same audience as every other supervision alert; not the
        // usuario who blocked the bot, and by WebSocket only, so a blocked
        // supervisor cannot start a chain of alerts about alerts.
        sqlx::query(
            "INSERT INTO notifications (id, event_id, recipient_usuario_id, tarea_id, channel, kind, priority, payload)
             SELECT gen_random_uuid(), $1, u.id, $2, 'websocket', 'delivery_failed', 0, $3
               FROM usuarios u
              WHERE u.nivel >= 2 AND u.deleted_at IS NULL AND u.verificado AND u.id <> $4
                AND u.extra_data -> 'notif_supervision' IS DISTINCT FROM 'false'::jsonb
             ON CONFLICT (event_id, recipient_usuario_id, channel) DO NOTHING",
        )
        .bind(alert_id)
        .bind(tarea_id)
        .bind(json!({ "title": title, "text": content, "level": "warning", "tarea_id": tarea_id, "buttons": [] }))
        .bind(usuario_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("SELECT pg_notify('gad_outbox', '')")
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}
