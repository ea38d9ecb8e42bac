//! PostgreSQL pools and the migration chain.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::settings::PostgresSettings;

/// The one linear chain in `migrations/`, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// A pool whose every connection has `statement_timeout` set at connect, so
/// no query can run unbounded. min = max: connections are made once and kept.
pub async fn connect(settings: &PostgresSettings, statement_timeout: Duration) -> Result<PgPool, sqlx::Error> {
    let options = crate::tls::postgres_options(settings)
        .map_err(|e| sqlx::Error::Configuration(e.into()))?
        .options([("statement_timeout", format!("{}ms", statement_timeout.as_millis()))])
        .application_name("gad");
    let pool = PgPoolOptions::new()
        .max_connections(settings.pool_size)
        .min_connections(settings.pool_size)
        .acquire_timeout(settings.acquire_timeout)
        .test_before_acquire(false)
        // Every acquire reports its wait as a trace event, which the
        // telemetry layer turns into `gad_db_pool_acquire_wait_seconds`.
        .acquire_time_level(log::LevelFilter::Trace)
        .connect_lazy_with(options);
    Ok(pool)
}

/// Opens every pooled connection and runs one geography query on each: the
/// first one on a fresh connection costs tens of milliseconds, and that cost
/// must not land on a request. The query runs under `statement_timeout`
/// rather than the pool's own: a KNN pool's timeout is tuned for warm
/// queries, and a cold one on a loaded machine can exceed it.
pub async fn warm(pool: &PgPool, connections: u32, statement_timeout: Duration) -> Result<(), sqlx::Error> {
    let mut held = Vec::with_capacity(connections as usize);
    for _ in 0..connections {
        let mut conn = pool.acquire().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::query("SELECT set_config('statement_timeout', $1, true)")
            .bind(format!("{}ms", statement_timeout.as_millis()))
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT ST_Distance('SRID=4326;POINT(0 0)'::geography, 'SRID=4326;POINT(1 1)'::geography)")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        held.push(conn);
    }
    Ok(())
}

/// Publishes `pool`'s size and its idle and in-use connections every few
/// seconds until the pool is closed (`name`: which pool, a bounded label).
pub fn watch_pool(pool: PgPool, name: &'static str) {
    use crate::metric_names::{DB_POOL_CONNECTIONS, DB_POOL_MAX};
    let max = f64::from(pool.options().get_max_connections());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POOL_WATCH_EVERY);
        while !pool.is_closed() {
            tick.tick().await;
            let (size, idle) = (pool.size(), pool.num_idle() as u32);
            metrics::gauge!(DB_POOL_MAX, "pool" => name).set(max);
            metrics::gauge!(DB_POOL_CONNECTIONS, "pool" => name, "state" => "idle").set(f64::from(idle));
            metrics::gauge!(DB_POOL_CONNECTIONS, "pool" => name, "state" => "in_use")
                .set(f64::from(size.saturating_sub(idle)));
        }
    });
}

const POOL_WATCH_EVERY: Duration = Duration::from_secs(5);

/// Applies pending migrations; concurrent callers serialise on sqlx's advisory lock.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}
