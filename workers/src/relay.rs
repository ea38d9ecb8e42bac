//! The outbox relay: publishes committed `outbox_events` rows to `GAD_EVENTS`
//! in id order and marks them published. One relay per database holds a
//! session advisory lock; the others wait to take over if it dies. It wakes on
//! the `NOTIFY` the outbox writes at commit, and polls as a fallback.
//!
//! After a batch is published, the stats-cache version of every usuario named
//! by a task event's `user.{id}` topics is bumped (`gad_shared::stats_cache`),
//! so no cached figure outlives the change it missed. Redis is soft here: a
//! failed bump is logged and the relay goes on.
//!
//! The same leader publishes Telegram notification rows (`notify_relay`).

use std::time::Duration;

use async_nats::jetstream;
use chrono::{DateTime, Utc};
use gad_shared::redis_conn::Redis;
use gad_shared::stats_cache;
use gad_shared::topology::Topology;
use sqlx::postgres::PgListener;
use sqlx::{Acquire, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::effects::outbox::NOTIFY_CHANNEL;
use crate::events::{self, Event};

/// Advisory lock key of the relay leader ("GADRELAY").
const LEADER_LOCK: i64 = 0x4741_4452_454c_4159;
/// Rows published per round.
const BATCH: i64 = 500;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Event(#[from] events::EventError),
    #[error("publish: {0}")]
    Publish(#[from] jetstream::context::PublishError),
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    event_id: Uuid,
    event_type: String,
    topics: Vec<String>,
    payload: serde_json::Value,
    created_at: DateTime<Utc>,
    traceparent: Option<String>,
}

pub async fn run(
    db: PgPool,
    js: jetstream::Context,
    topology: Topology,
    redis: Redis,
    poll: Duration,
    cancel: CancellationToken,
) {
    while !cancel.is_cancelled() {
        if let Err(e) = lead(&db, &js, &topology, &redis, poll, &cancel).await {
            tracing::warn!(error = %e, "outbox relay interrupted; retrying");
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// Publishes for as long as this process holds the leader lock.
async fn lead(
    db: &PgPool,
    js: &jetstream::Context,
    topology: &Topology,
    redis: &Redis,
    poll: Duration,
    cancel: &CancellationToken,
) -> Result<(), RelayError> {
    // A connection of its own: the session lock lives as long as it does.
    let mut leader = db.acquire().await?.detach();
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LEADER_LOCK)
        .fetch_one(&mut leader)
        .await?;
    if !got {
        return Ok(());
    }
    tracing::info!("outbox relay leading");
    let mut listener = PgListener::connect_with(db).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    loop {
        while publish_batch(&mut leader, js, topology, redis).await? == BATCH as usize {}
        while crate::notify_relay::publish_batch(&mut leader, js, topology).await? == BATCH as usize {}
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            n = tokio::time::timeout(poll, listener.recv()) => {
                if let Ok(Err(e)) = n {
                    return Err(e.into());
                }
            }
        }
    }
}

async fn publish_batch(
    conn: &mut sqlx::PgConnection,
    js: &jetstream::Context,
    topology: &Topology,
    redis: &Redis,
) -> Result<usize, RelayError> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, event_id, event_type, topics, payload, created_at, traceparent FROM outbox_events
         WHERE published_at IS NULL ORDER BY id LIMIT $1",
    )
    .bind(BATCH)
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    // Send the whole batch, then collect acknowledgements in order: one round
    // trip per batch instead of per event, and order is kept on the connection.
    let mut pending = Vec::with_capacity(rows.len());
    for row in &rows {
        let (subject, msg) = events::message(
            topology,
            Event {
                event_id: row.event_id,
                event_type: &row.event_type,
                data: row.payload.clone(),
                timestamp: row.created_at,
                topics: &row.topics,
                ttl: None,
                traceparent: row.traceparent.as_deref(),
            },
        )?;
        pending.push((row.id, js.send_publish(subject, msg).await?));
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
    let mut tx = conn.begin().await?;
    sqlx::query("UPDATE outbox_events SET published_at = now() WHERE id = ANY($1)")
        .bind(&published)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    bump_stats(redis, &rows[..published.len()]).await;
    match failure {
        // Rows after the failure stay unpublished and go out, in order, next round;
        // a duplicate of one that did arrive is dropped by its message id.
        Some(e) => Err(e.into()),
        None => Ok(rows.len()),
    }
}

/// Invalidates the cached stats of every usuario a published task event names.
async fn bump_stats(redis: &Redis, published: &[Row]) {
    let users: std::collections::BTreeSet<i64> = published
        .iter()
        .filter(|r| stats_cache::is_task_event(&r.event_type))
        .flat_map(|r| stats_cache::users_in_topics(&r.topics))
        .collect();
    if users.is_empty() {
        return;
    }
    let Some(mut conn) = redis.conn().await else {
        tracing::warn!(users = users.len(), "redis unreachable; stats caches not invalidated");
        return;
    };
    if let Err(e) = stats_cache::bump(&mut conn, &users).await {
        tracing::warn!(error = %e, users = users.len(), "stats caches not invalidated");
    }
}
