//! Building and running a worker process: the groups it was asked to run,
//! each on its own consumer, plus a small health server.

use std::net::SocketAddr;

use gad_shared::queue::Backend;
use gad_shared::queue::rabbit::{RabbitError, RabbitLink, RabbitNames};
use gad_shared::redis_conn::Redis;
use gad_shared::{db, settings, topology};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::circuit_breaker::CircuitBreaker;
use crate::consumer;
use crate::health::{self, HealthState};
use crate::job_store::JobStore;
use crate::jobs::HandlerContext;
use crate::outcome::RetryPolicy;
use crate::process::WorkerContext;
use crate::row_batch::RowBatcher;
use crate::settings::WorkersSettings;

/// How long jobs stopped at the end of the grace period get to write their
/// row back to `queued` and nak; counted on top of `shutdown_grace`.
const HAND_BACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Settings(#[from] settings::SettingsError),
    #[error("binding {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("nats: {0}")]
    Nats(#[from] async_nats::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Consumer(#[from] consumer::ConsumerError),
    #[error(transparent)]
    Rabbit(#[from] RabbitError),
}

pub struct Application {
    settings: WorkersSettings,
    ctx: WorkerContext,
    health_listener: TcpListener,
    health: HealthState,
    consumers: Vec<(String, consumer::Bound)>,
}

impl Application {
    pub async fn build(settings: WorkersSettings) -> Result<Self, StartError> {
        settings.workers.check()?;
        let addr = settings.workers.health_bind;
        let health_listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let (client, js) = topology::connect(&settings.nats)
            .await
            .map_err(|e| StartError::Nats(e.into()))?;
        let topology = topology::Topology::new(&settings.nats);
        topology
            .ensure(&js, settings.auth.token_ttl())
            .await
            .map_err(|e| StartError::Nats(e.into()))?;

        let pg = &settings.postgres;
        let db = db::connect(pg, pg.statement_timeout).await?;
        if settings.workers.migrate_on_start {
            db::migrate(&db).await?;
        }
        db::warm(&db, pg.pool_size, pg.statement_timeout).await?;
        db::watch_pool(db.clone(), "main");
        let runs_geo = settings.workers.groups.iter().any(|g| g == "geo");
        let knn_db = if runs_geo {
            let knn = db::connect(pg, pg.knn_timeout).await?;
            db::warm(&knn, pg.pool_size, pg.statement_timeout).await?;
            db::watch_pool(knn.clone(), "knn");
            knn
        } else {
            db.clone()
        };

        let status = js
            .get_key_value(topology.job_status_bucket())
            .await
            .map_err(|e| StartError::Nats(e.into()))?;
        let revocation = js
            .get_key_value(topology.revocation_bucket())
            .await
            .map_err(|e| StartError::Nats(e.into()))?;
        let rabbit = match settings.queue.backend {
            Backend::Jetstream => None,
            Backend::Rabbitmq => Some(
                RabbitLink::connect(
                    &settings.queue.rabbitmq,
                    RabbitNames::new(&settings.nats),
                    "gad-workers",
                )
                .await?,
            ),
        };
        let ctx = WorkerContext {
            store: JobStore {
                db: db.clone(),
                status,
                js: js.clone(),
                topology: topology.clone(),
                rows: RowBatcher::spawn(
                    db.clone(),
                    4 * settings.workers.row_batch_max,
                    settings.workers.row_batch_max,
                ),
            },
            handlers: HandlerContext {
                db: db.clone(),
                knn_db,
                redis: Redis::new(&settings.redis),
                revocation,
            },
            js,
            rabbit,
            topology,
            policy: RetryPolicy {
                base: settings.workers.backoff_base,
                cap: settings.workers.backoff_cap,
            },
            breaker: std::sync::Arc::new(CircuitBreaker::new(settings.workers.breaker)),
            abandon: CancellationToken::new(),
        };
        let mut consumers = Vec::new();
        for group in &settings.workers.groups {
            let c = consumer::bind(&ctx, group, settings.workers.group(group)).await?;
            consumers.push((group.clone(), c));
        }
        let health = HealthState {
            environment: settings.environment,
            nats: client,
            db,
            redis: Redis::new(&settings.redis),
            draining: CancellationToken::new(),
        };
        Ok(Self {
            settings,
            ctx,
            health_listener,
            health,
            consumers,
        })
    }

    pub fn health_addr(&self) -> std::io::Result<SocketAddr> {
        self.health_listener.local_addr()
    }

    /// Runs every group until `shutdown` fires; then stops pulling, hands
    /// back what was pulled but not started, and gives in-flight jobs the
    /// grace period to finish; the unfinished ones are stopped and handed
    /// back too (handlers are idempotent).
    pub async fn run_until(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let Application {
            settings,
            ctx,
            health_listener,
            health,
            consumers,
        } = self;
        let jobs = TaskTracker::new();
        let loops = TaskTracker::new();
        loops.spawn(crate::relay::run(
            ctx.store.db.clone(),
            ctx.js.clone(),
            ctx.topology.clone(),
            ctx.handlers.redis.clone(),
            settings.workers.relay_poll,
            shutdown.clone(),
        ));
        loops.spawn(crate::timers::start(
            ctx.store.db.clone(),
            &settings.workers,
            shutdown.clone(),
        ));
        loops.spawn(crate::notification_gauges::run(ctx.store.db.clone(), shutdown.clone()));
        loops.spawn(crate::retention::run(
            ctx.store.db.clone(),
            (&settings.workers).into(),
            shutdown.clone(),
        ));
        loops.spawn({
            let breaker = ctx.breaker.clone();
            let db = ctx.store.db.clone();
            let shutdown = shutdown.clone();
            async move { breaker.run_probe(db, shutdown).await }
        });
        loops.spawn(crate::max_deliveries::run(
            ctx.clone(),
            health.nats.clone(),
            shutdown.clone(),
        ));
        if let Some(link) = &ctx.rabbit {
            loops.spawn(crate::rabbit_dead::run(ctx.clone(), link.clone(), shutdown.clone()));
        }
        // With the jobs on RabbitMQ, legacy publishers use its jobs exchange
        // directly: a bridge would move their jobs to a stream nobody reads.
        let bridge = match ctx.rabbit {
            None => settings.workers.amqp_bridge.clone(),
            Some(_) => {
                if settings.workers.amqp_bridge.url.is_some() {
                    tracing::warn!("workers.amqp_bridge is ignored: the jobs queue is on RabbitMQ already");
                }
                crate::settings::AmqpBridgeSettings {
                    url: None,
                    ..settings.workers.amqp_bridge.clone()
                }
            }
        };
        loops.spawn(crate::amqp_bridge::run(
            bridge,
            crate::amqp_bridge::Target {
                js: ctx.js.clone(),
                topology: ctx.topology.clone(),
                publish_timeout: settings.nats.publish_timeout,
            },
            shutdown.clone(),
        ));
        for (group, consumer) in consumers {
            let s = settings.workers.group(&group);
            tracing::info!(%group, concurrency = s.concurrency, "worker group started");
            loops.spawn(consumer::run(
                ctx.clone(),
                group,
                consumer,
                s,
                shutdown.clone(),
                jobs.clone(),
            ));
        }
        let draining = health.draining.clone();
        let nats = health.nats.clone();
        let health_server = axum::serve(health_listener, health::router(health)).with_graceful_shutdown({
            let s = shutdown.clone();
            async move { s.cancelled().await }
        });
        let health_task = tokio::spawn(async move { health_server.await });
        shutdown.cancelled().await;
        draining.cancel();
        loops.close();
        jobs.close();
        // The grace counts from the signal. The periodic loops share it with
        // the jobs: one stuck on the database (a pool acquire, up to its
        // timeout) must not delay the jobs' deadline, and what it was doing
        // is redone by whoever runs next.
        let settled = async {
            loops.wait().await;
            jobs.wait().await;
        };
        if tokio::time::timeout(settings.workers.shutdown_grace, settled)
            .await
            .is_err()
        {
            tracing::warn!("grace period over with jobs still running; handing them back to the queue");
            ctx.abandon.cancel();
            // Handing back is a row write and a nak each; past this bound they
            // are redelivered after their ack wait instead.
            if tokio::time::timeout(HAND_BACK_TIMEOUT, jobs.wait()).await.is_err() {
                tracing::warn!("jobs not handed back in time; they will be redelivered after their ack wait");
            }
        }
        let _ = health_task.await;
        // Acks and naks are queued on the connection, not awaited: without a
        // flush the last hand-backs can die with the process, and those jobs
        // wait out their ack wait (CI saw two).
        if !matches!(tokio::time::timeout(HAND_BACK_TIMEOUT, nats.flush()).await, Ok(Ok(()))) {
            tracing::warn!("last acknowledgements not flushed; those jobs come back after their ack wait");
        }
        if let Some(link) = &ctx.rabbit {
            let _ = tokio::time::timeout(HAND_BACK_TIMEOUT, link.close()).await;
        }
        Ok(())
    }
}
