//! The retention purge (domain.md §2.1): terminal jobs older than
//! `JOBS_RETENTION_DAYS`, notifications older than 90 days, audit rows past
//! `retention_until` and published outbox rows older than a day go; nothing
//! else does, with several worker processes purging at once.

use std::time::Duration;

use gad_workers::retention::{self, Policy};
use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::custom_app::CustomApp;

const WITHIN: Duration = Duration::from_secs(15);

/// Per table: planted rows, planted rows the rules make expired, and the
/// other rows (the seed's, and whatever the running services write).
async fn counts(db: &PgPool) -> anyhow::Result<Vec<(&'static str, i64, i64, i64)>> {
    let mut out = Vec::new();
    for (table, planted, expired) in [
        (
            "jobs",
            "kind = 'retention.probe'",
            "status IN ('succeeded', 'failed', 'dead', 'cancelled') AND created_at < now() - interval '30 days'",
        ),
        (
            "notifications",
            "kind = 'retention_probe'",
            "created_at < now() - interval '90 days'",
        ),
        (
            "audit_log",
            "action = 'retention_probe'",
            "retention_until < current_date",
        ),
        (
            "outbox_events",
            "event_type = 'retention_probe'",
            "published_at < now() - interval '1 day'",
        ),
    ] {
        let row: (i64, i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FILTER (WHERE {planted}), count(*) FILTER (WHERE {planted} AND {expired}),
                    count(*) FILTER (WHERE NOT ({planted})) FROM {table}"
        )))
        .fetch_one(db)
        .await?;
        out.push((table, row.0, row.1, row.2));
    }
    Ok(out)
}

/// For every table: expired rows and rows just inside each limit.
async fn plant(db: &PgPool, usuario: i64) -> anyhow::Result<()> {
    for (status, days) in [
        ("succeeded", 31),
        ("failed", 45),
        ("dead", 31),
        ("cancelled", 400),
        ("succeeded", 29),
        ("queued", 60),
        ("running", 60),
    ] {
        sqlx::query(
            "INSERT INTO jobs (job_id, kind, status, submitted_by, created_at)
             VALUES ($1, 'retention.probe', $2::job_status, $3, now() - $4 * interval '1 day')",
        )
        .bind(Uuid::now_v7())
        .bind(status)
        .bind(usuario)
        .bind(f64::from(days))
        .execute(db)
        .await?;
    }
    for days in [91, 200, 89, 1] {
        sqlx::query(
            "INSERT INTO notifications (event_id, recipient_usuario_id, channel, kind, created_at)
             VALUES ($1, $2, 'websocket', 'retention_probe', now() - $3 * interval '1 day')",
        )
        .bind(Uuid::now_v7())
        .bind(usuario)
        .bind(f64::from(days))
        .execute(db)
        .await?;
    }
    for (occurred_days, retained_days) in [(400, -1), (4000, -30), (10, 0), (400, 5)] {
        sqlx::query(
            "INSERT INTO audit_log (actor_usuario_id, action, occurred_at, retention_until)
             VALUES ($1, 'retention_probe', now() - $2 * interval '1 day', current_date + $3::int)",
        )
        .bind(usuario)
        .bind(f64::from(occurred_days))
        .bind(retained_days)
        .execute(db)
        .await?;
    }
    for (published_hours, created_hours) in [(Some(25.0), 26.0), (Some(72.0), 72.0), (Some(23.0), 30.0)] {
        sqlx::query(
            "INSERT INTO outbox_events (event_id, event_type, topics, payload, created_at, published_at)
             VALUES ($1, 'retention_probe', '{}', $2, now() - $3 * interval '1 hour',
                     now() - $4 * interval '1 hour')",
        )
        .bind(Uuid::now_v7())
        .bind(json!({}))
        .bind(created_hours)
        .bind(published_hours)
        .execute(db)
        .await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_periodic_purge_deletes_exactly_the_expired_rows() -> anyhow::Result<()> {
    let mut app = CustomApp::new(|_| {}).await?;
    let usuario = app.user(gad_e2e::users::EFECTIVO).await?.id;
    plant(&app.db, usuario).await?;
    let before = counts(&app.db).await?;
    assert!(
        before.iter().all(|(_, _, expired, _)| *expired >= 2),
        "every rule has rows to purge: {before:?}"
    );

    // Two processes purging the same database.
    for _ in 0..2 {
        app.start_workers(|s| {
            s.workers.groups = vec![];
            s.workers.retention_interval = Duration::from_millis(100);
            s.workers.retention_batch = 2;
        })
        .await?;
    }
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let now = counts(&app.db).await?;
        if now.iter().all(|(_, _, expired, _)| *expired == 0) {
            for ((table, planted, _, others), (_, planted_before, expired_before, others_before)) in
                now.iter().zip(&before)
            {
                assert_eq!(
                    *planted,
                    planted_before - expired_before,
                    "{table}: only expired rows are gone"
                );
                assert!(
                    others >= others_before,
                    "{table}: rows that had not expired were deleted"
                );
            }
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "not purged: {now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_round_works_through_every_batch_and_only_one_process_purges_at_a_time() -> anyhow::Result<()> {
    let app = CustomApp::new(|_| {}).await?;
    let usuario = app.user(gad_e2e::users::EFECTIVO).await?.id;
    for _ in 0..3 {
        plant(&app.db, usuario).await?;
    }
    let policy = Policy {
        interval: Duration::from_secs(3600),
        jobs_days: 30,
        batch: 2,
    };
    let cancel = CancellationToken::new();

    // Someone else holds the purge: this round steps aside.
    let mut holder = app.db.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(retention::PURGE_LOCK)
        .execute(&mut *holder)
        .await?;
    assert_eq!(retention::purge_once(&app.db, policy, &cancel).await?, None);
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(retention::PURGE_LOCK)
        .execute(&mut *holder)
        .await?;
    drop(holder);

    let purged = retention::purge_once(&app.db, policy, &cancel).await?;
    assert_eq!(
        purged,
        Some(vec![
            ("jobs", 12),
            ("notifications", 6),
            ("audit_log", 6),
            ("outbox_events", 6)
        ]),
        "batches of 2 until nothing is left"
    );
    assert!(counts(&app.db).await?.iter().all(|(_, _, expired, _)| *expired == 0));
    app.stop().await
}
