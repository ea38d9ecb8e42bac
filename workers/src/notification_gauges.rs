//! The notification backlog of §6.5: `notifications_pending` and
//! `notification_oldest_unacked_seconds` by channel and priority. Every
//! worker process reads and exports the same figures (alert rules take the
//! max); a failed read leaves the last ones, and the next read corrects them.
//! Undelivered is `pending`, `sending` or `failed` awaiting its retry: on the
//! WebSocket channel a row stays `pending` until the usuario acknowledges it.

use std::time::Duration;

use gad_shared::metric_names::{NOTIFICATION_OLDEST_UNACKED, NOTIFICATIONS_PENDING};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// How often the backlog is read.
const EVERY: Duration = Duration::from_secs(10);
const CHANNELS: [&str; 2] = ["telegram", "websocket"];
const PRIORITIES: [i16; 3] = [0, 1, 2];

pub async fn run(db: PgPool, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match read(&db).await {
            Ok(rows) => publish(&rows),
            Err(e) => tracing::debug!(error = %e, "notification backlog unavailable"),
        }
    }
}

type Row = (String, i16, i64, f64);

pub async fn read(db: &PgPool) -> Result<Vec<Row>, sqlx::Error> {
    sqlx::query_as(
        "SELECT channel::text, priority, count(*),
                COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8
           FROM notifications
          WHERE status IN ('pending', 'sending', 'failed')
          GROUP BY channel, priority",
    )
    .fetch_all(db)
    .await
}

/// Sets every (channel, priority) pair, zero where nothing waits, so an
/// emptied backlog does not keep its last figure.
fn publish(rows: &[Row]) {
    for channel in CHANNELS {
        for priority in PRIORITIES {
            let found = rows.iter().find(|(c, p, _, _)| c == channel && *p == priority);
            let (count, oldest) = found.map_or((0, 0.0), |(_, _, n, age)| (*n, *age));
            let labels = [("channel", channel.to_string()), ("priority", priority.to_string())];
            metrics::gauge!(NOTIFICATIONS_PENDING, &labels).set(count as f64);
            metrics::gauge!(NOTIFICATION_OLDEST_UNACKED, &labels).set(oldest);
        }
    }
}
