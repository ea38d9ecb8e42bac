//! The outbox relay (domain.md §2.1 outbox_events): rows committed in a
//! transaction reach `GAD_EVENTS` in id order and are marked published; a
//! rolled-back transaction publishes nothing.

use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures::StreamExt;
use gad_e2e::spawn_app;
use gad_shared::envelope::{self, EventEnvelope, headers};
use serde_json::json;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(15);
const EVENT_TYPE: &str = "relay_probe";

/// Adds one probe event to `tx`; returns its event id.
async fn probe(tx: &mut Transaction<'_, Postgres>, n: u32) -> anyhow::Result<Uuid> {
    let event_id = Uuid::now_v7();
    sqlx::query("INSERT INTO outbox_events (event_id, event_type, topics, payload) VALUES ($1, $2, $3, $4)")
        .bind(event_id)
        .bind(EVENT_TYPE)
        .bind(vec!["alerts".to_string(), format!("probe.{n}")])
        .bind(json!({ "n": n }))
        .execute(&mut **tx)
        .await?;
    sqlx::query("SELECT pg_notify('gad_outbox', '')")
        .execute(&mut **tx)
        .await?;
    Ok(event_id)
}

async fn unpublished(db: &PgPool, ids: &[Uuid]) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE event_id = ANY($1) AND published_at IS NULL")
            .bind(ids)
            .fetch_one(db)
            .await?,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_rows_go_out_in_id_order_and_rolled_back_ones_never() -> anyhow::Result<()> {
    let app = spawn_app().await?;

    let mut committed = Vec::new();
    let mut tx = app.db.begin().await?;
    for n in 0..5 {
        committed.push(probe(&mut tx, n).await?);
    }
    tx.commit().await?;

    let mut tx = app.db.begin().await?;
    let rolled_back = probe(&mut tx, 99).await?;
    tx.rollback().await?;

    // Committed after the rollback: once it is out, the relay has been past it.
    let mut tx = app.db.begin().await?;
    let fence = probe(&mut tx, 100).await?;
    tx.commit().await?;
    committed.push(fence);

    let in_id_order: Vec<Uuid> =
        sqlx::query_scalar("SELECT event_id FROM outbox_events WHERE event_id = ANY($1) ORDER BY id")
            .bind(&committed)
            .fetch_all(&app.db)
            .await?;
    assert_eq!(in_id_order, committed, "ids follow insertion order");

    let stream = app.js.get_stream(app.topology.events_stream()).await?;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: app.topology.event_subject(EVENT_TYPE),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WITHIN;
    while seen.last() != Some(&fence) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let msg = tokio::time::timeout(left, messages.next())
            .await
            .map_err(|_| anyhow::anyhow!("only {seen:?} published within {WITHIN:?}"))?
            .ok_or_else(|| anyhow::anyhow!("event stream ended"))??;
        let event: EventEnvelope = envelope::decode(&msg.payload, None)?;
        assert_eq!(event.event_type, EVENT_TYPE);
        let n = event.data["n"].as_u64().unwrap_or(u64::MAX);
        let topics = msg
            .headers
            .as_ref()
            .and_then(|h| h.get(headers::TOPICS))
            .map(|v| v.as_str().to_string());
        assert_eq!(topics, Some(format!("alerts,probe.{n}")), "topics travel in a header");
        seen.push(event.event_id);
    }
    assert_eq!(seen, committed, "published once each, in id order");
    assert!(!seen.contains(&rolled_back));

    // Marked published (the mark follows the acknowledgements).
    let deadline = tokio::time::Instant::now() + WITHIN;
    while unpublished(&app.db, &committed).await? > 0 {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "rows not marked published");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE event_id = $1")
        .bind(rolled_back)
        .fetch_one(&app.db)
        .await?;
    assert_eq!(rows, 0);
    app.stop().await
}
