//! The harness leaves nothing behind: after `stop`, and after a test that
//! ended without it (dropped on a failed assertion), the test's database and
//! its streams and buckets are gone.

use gad_e2e::TestApp;
use gad_e2e::services::ServiceUrls;
use sqlx::Connection;

struct Footprint {
    database: String,
    streams: Vec<String>,
}

fn footprint(app: &TestApp) -> Footprint {
    let t = &app.topology;
    let mut streams = vec![
        t.jobs_stream(),
        t.events_stream(),
        t.dlq_stream(),
        t.notify_stream(),
        t.telegram_stream(),
    ];
    streams.extend([t.job_status_bucket(), t.idempotency_bucket(), t.revocation_bucket()].map(|b| format!("KV_{b}")));
    Footprint {
        database: app.isolation.database.name.clone(),
        streams,
    }
}

/// Counts what of `f` still exists, through fresh connections.
async fn remaining(f: &Footprint) -> anyhow::Result<Vec<String>> {
    let urls = ServiceUrls::get()?;
    let mut left = Vec::new();
    let mut pg = sqlx::PgConnection::connect(&urls.postgres_db("postgres")).await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(&f.database)
        .fetch_one(&mut pg)
        .await?;
    if exists {
        left.push(f.database.clone());
    }
    let js = async_nats::jetstream::new(async_nats::connect(&urls.nats).await?);
    for name in &f.streams {
        if js.get_stream(name).await.is_ok() {
            left.push(name.clone());
        }
    }
    Ok(left)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_removes_the_database_and_streams() -> anyhow::Result<()> {
    let app = gad_e2e::spawn_app().await?;
    let f = footprint(&app);
    assert!(
        remaining(&f).await?.len() == 1 + f.streams.len(),
        "the app should have created everything"
    );
    app.stop().await?;
    assert_eq!(remaining(&f).await?, Vec::<String>::new());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_without_stop_still_removes_everything() -> anyhow::Result<()> {
    let app = gad_e2e::spawn_app().await?;
    let f = footprint(&app);
    // What happens when an assertion fails before `stop`.
    drop(app);
    assert_eq!(remaining(&f).await?, Vec::<String>::new());
    Ok(())
}
