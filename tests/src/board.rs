//! The WebSocket board alone: one test's isolation, its streams, and
//! broadcasters started with the test's own limits (in this process, or as
//! OS processes with [`crate::service_process`]). Events are published
//! to `GAD_EVENTS` by the test, exactly as the workers publish them, so a
//! test controls what is sent and when.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream;
use gad_broadcaster::settings::BroadcasterSection;
use gad_shared::settings::Environment;
use gad_shared::topology::{self, Topology};
use gad_workers::events::{self, Event};
use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::cleanup::Cleanup;
use crate::isolation::Isolation;
use crate::services::ServiceUrls;
use crate::tasks::ServiceTasks;
use crate::users::{self, SeedUser};
use crate::websocket::WsClient;

pub struct Board {
    pub isolation: Isolation,
    pub js: jetstream::Context,
    pub topology: Topology,
    pub db: PgPool,
    pub admin: SeedUser,
    pub supervisor: SeedUser,
    pub efectivo: SeedUser,
    nats_client: async_nats::Client,
    tasks: Vec<ServiceTasks>,
    cleanup: Cleanup,
}

/// The broadcaster limits of a test: the defaults, every wait shortened.
pub fn section() -> BroadcasterSection {
    BroadcasterSection {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        metrics_bind: None,
        shutdown_grace: Duration::from_secs(2),
        drain_spread: Duration::from_millis(500),
        ..BroadcasterSection::default()
    }
}

impl Board {
    /// A fresh isolation with its streams; no broadcaster yet.
    pub async fn start() -> anyhow::Result<Self> {
        let urls = ServiceUrls::get()?;
        urls.check_nats().await?;
        let isolation = Isolation::create(urls).await?;
        let cleanup = Cleanup::new(urls, &isolation.database.name, &isolation.nats, &isolation.queue);
        let (nats_client, js) = topology::connect(&isolation.nats).await.context("connecting to NATS")?;
        let topology = Topology::new(&isolation.nats);
        topology
            .ensure(&js, isolation.auth.token_ttl())
            .await
            .context("creating the streams")?;
        let db = PgPoolOptions::new()
            .max_connections(2)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&isolation.postgres.url)
            .await
            .context("connecting to the test database")?;
        let auth = &isolation.auth;
        Ok(Self {
            admin: SeedUser::load(&db, auth, users::ADMIN).await?,
            supervisor: SeedUser::load(&db, auth, users::SUPERVISOR).await?,
            efectivo: SeedUser::load(&db, auth, users::EFECTIVO).await?,
            isolation,
            js,
            topology,
            db,
            nats_client,
            tasks: Vec::new(),
            cleanup,
        })
    }

    /// Starts a broadcaster in this process with `section`; returns its
    /// `ws://` base and the token that stops it alone.
    pub async fn broadcaster(&mut self, section: BroadcasterSection) -> anyhow::Result<(String, CancellationToken)> {
        self.broadcaster_in(crate::app::ENVIRONMENT, section).await
    }

    /// [`Board::broadcaster`] in another environment (production hides test routes).
    pub async fn broadcaster_in(
        &mut self,
        environment: Environment,
        section: BroadcasterSection,
    ) -> anyhow::Result<(String, CancellationToken)> {
        let mut settings = crate::broadcaster::settings(&self.isolation, None);
        settings.broadcaster = section;
        settings.environment = environment;
        let app = gad_broadcaster::Application::build(settings)
            .await
            .context("building the broadcaster")?;
        let addr = app.local_addr()?;
        let mut tasks = ServiceTasks::new(CancellationToken::new());
        let stop = tasks.shutdown();
        tasks.spawn("broadcaster", app.run_until(tasks.shutdown()));
        self.tasks.push(tasks);
        Ok((format!("ws://{addr}"), stop))
    }

    /// Publishes one event on `topics` the way the workers do; returns its
    /// stream sequence. `data` gets nothing added.
    pub async fn publish(&self, event_type: &str, topics: &[String], data: Value) -> anyhow::Result<u64> {
        let ack = self.publish_async(event_type, topics, data).await?;
        Ok(ack.await.context("event not acknowledged")?.sequence)
    }

    /// [`Board::publish`] without waiting for the acknowledgement (many in flight).
    pub async fn publish_async(
        &self,
        event_type: &str,
        topics: &[String],
        data: Value,
    ) -> anyhow::Result<jetstream::context::PublishAckFuture> {
        let event = Event {
            event_id: Uuid::now_v7(),
            event_type,
            data,
            timestamp: chrono::Utc::now(),
            topics,
            ttl: None,
            traceparent: None,
        };
        let (subject, msg) = events::message(&self.topology, event)?;
        self.js.send_publish(subject, msg).await.context("publishing an event")
    }

    /// A token for usuario `id` at `nivel` (the broadcaster trusts the token alone).
    pub fn token(&self, id: i64, nivel: u8) -> anyhow::Result<String> {
        let (token, _) = gad_shared::auth::TokenIssuer::new(&self.isolation.auth)
            .issue(id, nivel)
            .map_err(|e| anyhow::anyhow!("minting a token: {e}"))?;
        Ok(token)
    }

    /// Connects to `base` with `token` and reads the `connection_ack`.
    pub async fn connect(base: &str, token: &str) -> anyhow::Result<WsClient> {
        let mut ws = WsClient::connect(&format!("{base}/ws/connect?token={token}")).await?;
        let ack = ws.next_frame(Duration::from_secs(5)).await?;
        anyhow::ensure!(ack["event_type"] == "connection_ack", "first frame: {ack}");
        Ok(ws)
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        let Board {
            db,
            nats_client,
            tasks,
            mut cleanup,
            ..
        } = self;
        let mut stopped = Ok(());
        for mut t in tasks {
            stopped = stopped.and(t.stop().await);
        }
        db.close().await;
        let _ = nats_client.flush().await;
        drop(nats_client);
        stopped.and(cleanup.run().await)
    }
}
