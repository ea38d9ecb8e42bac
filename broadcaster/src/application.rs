//! Building and running the broadcaster.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use gad_shared::auth::{Revocations, TokenVerifier};
use gad_shared::redis_conn::Redis;
use gad_shared::{settings, topology};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::feed;
use crate::frames::close;
use crate::history::Limits;
use crate::hub::Hub;
use crate::settings::{BroadcasterSettings, UpdateSource};
use crate::state::{AppState, Shared};
use crate::telegram;
use crate::telegram::bot::BotContext;
use crate::telegram::delivery;
use crate::telegram::limiter::Limiter;
use crate::telegram::sender::Sender;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Settings(#[from] settings::SettingsError),
    #[error("binding {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("nats: {0}")]
    Nats(#[from] async_nats::Error),
    #[error("telegram: {0}")]
    Telegram(#[from] telegram::api::BotError),
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
}

/// Notification delivery and the bot, when a bot token is configured.
struct TelegramDelivery {
    consumers: delivery::Consumers,
    sender: Arc<Sender>,
    concurrency: usize,
    bot: BotContext,
    /// `Some` in webhook mode: the shared consumer of `GAD_TELEGRAM`.
    webhook: Option<telegram::bot::webhook::Consumer>,
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
    consumer: async_nats::jetstream::consumer::Consumer<async_nats::jetstream::consumer::pull::OrderedConfig>,
    background: CancellationToken,
    tracker: TaskTracker,
    telegram: Option<TelegramDelivery>,
}

impl Application {
    pub async fn build(settings: BroadcasterSettings) -> Result<Self, StartError> {
        settings.check()?;
        let addr = settings.broadcaster.bind;
        let listener = TcpListener::bind(addr)
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
        let job_status = js
            .get_key_value(topology.job_status_bucket())
            .await
            .map_err(|e| StartError::Nats(e.into()))?;
        let tracker = TaskTracker::new();
        let background = CancellationToken::new();
        let revocations = Revocations::default();
        let revocation_bucket = js
            .get_key_value(topology.revocation_bucket())
            .await
            .map_err(|e| StartError::Nats(e.into()))?;
        revocations
            .follow(revocation_bucket, background.clone(), &tracker)
            .await
            .map_err(|e| StartError::Nats(e.into()))?;
        let (consumer, start) = feed::subscribe(&js, &topology).await?;
        let b = &settings.broadcaster;
        let hub = Hub::new(
            Limits {
                events_per_topic: b.history_events_per_topic,
                max_age: b.history_max_age,
                max_bytes: b.history_max_bytes,
            },
            start,
        );
        let db = gad_shared::db::connect(&settings.postgres, settings.postgres.statement_timeout).await?;
        gad_shared::db::watch_pool(db.clone(), "main");
        let telegram = telegram_delivery(&settings, &js, &topology, &job_status, &db).await?;
        let quota = governor::Quota::per_second(b.new_connections_per_second).allow_burst(b.new_connections_burst);
        let state = AppState::new(Shared {
            new_connections: governor::RateLimiter::direct(quota),
            verifier: TokenVerifier::new(&settings.auth, revocations),
            settings: Arc::new(settings),
            hub,
            db,
            nats: client,
            job_status,
            js,
            topology,
            connections: TaskTracker::new(),
            draining: CancellationToken::new(),
        });
        Ok(Self {
            listener,
            state,
            consumer,
            background,
            tracker,
            telegram,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown`; then closes every connection (1001, clients
    /// reconnect elsewhere and resume) within the grace period.
    pub async fn run_until(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let Application {
            listener,
            state,
            consumer,
            background,
            tracker,
            telegram,
        } = self;
        if let Some(t) = telegram {
            // Stops pulling at shutdown; sends in flight finish first.
            tracker.spawn(delivery::run(t.consumers, t.sender, t.concurrency, shutdown.clone()));
            match t.webhook {
                Some(consumer) => tracker.spawn(telegram::bot::webhook::run(t.bot, consumer, shutdown.clone())),
                None => tracker.spawn(telegram::bot::run(t.bot, shutdown.clone())),
            };
        }
        tracker.spawn(feed::run(consumer, state.hub.clone(), background.clone()));
        let grace = state.settings.broadcaster.shutdown_grace;
        let spread = state.settings.broadcaster.drain_spread;
        let hub = state.hub.clone();
        let draining = state.draining.clone();
        let connections = state.connections.clone();
        let send_buffer = state.settings.broadcaster.socket_send_buffer;
        let listener = listener.tap_io(move |tcp| {
            // axum leaves Nagle on; frames are flushed in batches already.
            let _ = tcp.set_nodelay(true);
            if let Some(bytes) = send_buffer {
                let _ = socket2::SockRef::from(&*tcp).set_send_buffer_size(bytes);
            }
        });
        let app = crate::routes::router(state);
        let signal = shutdown.clone();
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            signal.cancelled().await;
            draining.cancel();
        });
        let server = tokio::spawn(async move { server.await });
        shutdown.cancelled().await;
        let deadline = tokio::time::Instant::now() + grace;
        // Upgraded connections outlive the server: closed here, spread out,
        // and waited for within the grace period.
        drain(&hub, spread).await;
        connections.close();
        let _ = tokio::time::timeout_at(deadline, connections.wait()).await;
        let result = match tokio::time::timeout_at(deadline, server).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(std::io::Error::other(e)),
            Err(_) => Ok(()),
        };
        background.cancel();
        tracker.close();
        tracker.wait().await;
        result
    }
}

/// Closes every connection with 1001, evenly spread over `spread`, so its
/// clients reconnect to other replicas a few at a time rather than all at
/// once (a thundering herd of resumes).
async fn drain(hub: &Hub, spread: Duration) {
    let handles = hub.handles();
    let n = handles.len() as u32;
    let start = tokio::time::Instant::now();
    for (i, handle) in handles.into_iter().enumerate() {
        tokio::time::sleep_until(start + spread * i as u32 / n.max(1)).await;
        handle.close(close::GOING_AWAY);
    }
}

async fn telegram_delivery(
    settings: &BroadcasterSettings,
    js: &async_nats::jetstream::Context,
    topology: &topology::Topology,
    job_status: &async_nats::jetstream::kv::Store,
    db: &sqlx::PgPool,
) -> Result<Option<TelegramDelivery>, StartError> {
    let t = &settings.telegram;
    let Some(bot) = telegram::api::bot(t)? else {
        tracing::info!("telegram.bot_token not set; Telegram delivery is off");
        return Ok(None);
    };
    let db = db.clone();
    let redis = Redis::new(&settings.redis);
    // Keys carry the stream prefix, so tenants (and tests) sharing a Redis
    // do not share limits.
    let key_prefix = settings.nats.stream_prefix.clone();
    let limiter = Arc::new(Limiter::new(
        redis.clone(),
        settings.redis.command_timeout,
        &key_prefix,
        t.per_chat_interval,
        t.per_bot_per_second,
        t.replicas,
    ));
    let consumers = delivery::consumers(js, topology, t.ack_wait).await?;
    let webhook = match t.updates {
        UpdateSource::Polling => None,
        UpdateSource::Webhook => Some(telegram::bot::webhook::consumer(js, topology, t.ack_wait).await?),
    };
    let bot_context = BotContext {
        bot: bot.clone(),
        db: db.clone(),
        redis: redis.clone(),
        redis_timeout: settings.redis.command_timeout,
        publisher: gad_shared::queue::Publisher::new(
            &settings.queue,
            &settings.nats,
            js.clone(),
            "gad-broadcaster bot",
        ),
        topology: topology.clone(),
        job_status: job_status.clone(),
        settings: t.clone(),
        key_prefix: key_prefix.clone(),
        limiter: limiter.clone(),
    };
    let sender = Sender {
        db,
        bot,
        limiter,
        redis,
        settings: t.clone(),
        redis_timeout: settings.redis.command_timeout,
        key_prefix,
    };
    Ok(Some(TelegramDelivery {
        consumers,
        sender: Arc::new(sender),
        concurrency: t.concurrency,
        bot: bot_context,
        webhook,
    }))
}
