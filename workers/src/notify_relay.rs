//! The Telegram half of the outbox relay: `notifications` rows of channel
//! `telegram` still `pending` are published to `GAD_NOTIFY` (`gad.notify.p0`
//! for priority 0, `gad.notify.bulk` otherwise) and become `sending`. The
//! broadcaster's delivery consumers take it from there. The message id is
//! the notification id, so a row published twice (a crash between the
//! PubAck and the update) is dropped by the stream's duplicate window.

use async_nats::jetstream;
use async_nats::jetstream::message::PublishMessage;
use gad_shared::topology::Topology;
use uuid::Uuid;

use crate::relay::RelayError;

/// Rows published per round.
const BATCH: i64 = 500;

/// The body of a `gad.notify.*` message: which row to deliver. The row
/// itself is read at delivery time, so a stale message cannot resend a row
/// that was delivered, acknowledged or expired meanwhile.
#[derive(serde::Serialize)]
struct NotifyMessage {
    notification_id: Uuid,
}

/// Publishes one batch; returns how many rows it took.
pub async fn publish_batch(
    conn: &mut sqlx::PgConnection,
    js: &jetstream::Context,
    topology: &Topology,
) -> Result<usize, RelayError> {
    let rows: Vec<(Uuid, i16)> = sqlx::query_as(
        "SELECT id, priority FROM notifications
          WHERE channel = 'telegram' AND status = 'pending'
          ORDER BY priority, created_at LIMIT $1",
    )
    .bind(BATCH)
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut pending = Vec::with_capacity(rows.len());
    for &(id, priority) in &rows {
        let body = serde_json::to_vec(&NotifyMessage { notification_id: id }).unwrap_or_default();
        let message = PublishMessage::build().payload(body.into()).message_id(id.to_string());
        pending.push((id, js.send_publish(topology.notify_subject(priority), message).await?));
    }
    let mut published = Vec::with_capacity(pending.len());
    let mut failure = None;
    for (id, ack) in pending {
        match ack.await {
            Ok(_) => published.push(id),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    sqlx::query("UPDATE notifications SET status = 'sending' WHERE id = ANY($1) AND status = 'pending'")
        .bind(&published)
        .execute(&mut *conn)
        .await?;
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(rows.len()),
    }
}
