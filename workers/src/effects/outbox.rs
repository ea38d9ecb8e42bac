//! The outboxes: events (`outbox_events`, published to `GAD_EVENTS` by the
//! relay after commit, in id order) and notifications (one row per recipient
//! and channel).

use uuid::Uuid;

use super::Tx;

/// Channel the relay listens on; the notification is delivered at commit.
pub const NOTIFY_CHANNEL: &str = "gad_outbox";

/// Queues one event for every topic in `topics` (§8 table).
pub async fn event(
    tx: &mut Tx<'_>,
    event_type: &str,
    topics: &[String],
    data: serde_json::Value,
    job_id: Option<Uuid>,
) -> Result<Uuid, sqlx::Error> {
    let event_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO outbox_events (event_id, event_type, topics, payload, job_id, traceparent)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(event_id)
    .bind(event_type)
    .bind(topics)
    .bind(data)
    .bind(job_id)
    .bind(gad_shared::trace_context::outgoing().map(|t| t.to_string()))
    .execute(&mut **tx)
    .await?;
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(NOTIFY_CHANNEL)
        .execute(&mut **tx)
        .await?;
    Ok(event_id)
}

/// One notification: what all its rows share.
pub struct Notification<'a> {
    /// Groups the rows, and makes a repeat (a redelivered job) a no-op.
    pub event_id: Uuid,
    pub tarea_id: Option<i64>,
    pub kind: &'a str,
    /// 0 = must act now.
    pub priority: i16,
    pub payload: &'a serde_json::Value,
}

/// The rows of one notification, one per `(usuario, channel)` (`telegram` or
/// `websocket`), as one statement: a notice to every supervisor is hundreds
/// of rows, and a round trip each held the task's row lock for a tenth of a
/// second.
pub async fn notification(tx: &mut Tx<'_>, n: &Notification<'_>, to: &[(i64, &str)]) -> Result<(), sqlx::Error> {
    if to.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = to.iter().map(|_| Uuid::now_v7()).collect();
    let recipients: Vec<i64> = to.iter().map(|(r, _)| *r).collect();
    let channels: Vec<&str> = to.iter().map(|(_, c)| *c).collect();
    sqlx::query(
        "INSERT INTO notifications (id, event_id, recipient_usuario_id, tarea_id, channel, kind, priority, payload)
         SELECT r.id, $4, r.recipient, $5, r.channel, $6, $7, $8
         FROM unnest($1::uuid[], $2::bigint[], $3::text[]) AS r(id, recipient, channel)
         ON CONFLICT (event_id, recipient_usuario_id, channel) DO NOTHING",
    )
    .bind(ids)
    .bind(recipients)
    .bind(channels)
    .bind(n.event_id)
    .bind(n.tarea_id)
    .bind(n.kind)
    .bind(n.priority)
    .bind(n.payload)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
