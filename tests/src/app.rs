//! `spawn_app()`: workers, ingress and broadcaster of one test, in this
//! process, against the shared servers, isolated by [`Isolation`].

use std::net::SocketAddr;
use std::sync::Once;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream;
use gad_broadcaster::settings::UpdateSource;
use gad_ingress::routes::telegram_webhook;
use gad_ingress::settings::Secret;
use gad_shared::queue::Backend;
use gad_shared::settings::{Environment, NatsSettings, TelemetrySettings};
use gad_shared::topology::{self, Topology};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;

use crate::cleanup::Cleanup;
use crate::client::http_client;
use crate::fake_telegram::FakeTelegram;
use crate::isolation::Isolation;
use crate::services::ServiceUrls;
use crate::tasks::ServiceTasks;
use crate::tcp_proxy::TcpProxy;
use crate::users::{self, SeedUser};
use crate::websocket::WsClient;
use crate::{broadcaster, ingress, workers};

/// How long ingress may take to bind NATS and load the revocation mirror.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// The running services of one test and what a test needs to drive them.
pub struct TestApp {
    /// `http://127.0.0.1:<port>` of ingress.
    pub http: String,
    /// `ws://127.0.0.1:<port>` of the broadcaster; `None` when it was not started.
    pub ws: Option<String>,
    pub client: reqwest::Client,
    /// nivel 3, 2 and 1 seeded usuarios with tokens for this test.
    pub admin: SeedUser,
    pub supervisor: SeedUser,
    pub efectivo: SeedUser,
    /// The test's own database (a clone of the seeded template).
    pub db: PgPool,
    /// JetStream on the real server, and the names under this test's prefixes.
    pub js: jetstream::Context,
    pub topology: Topology,
    pub isolation: Isolation,
    /// The workers' health server, when workers were started.
    pub workers_health: Option<SocketAddr>,
    /// The fake Bot API the broadcaster delivers to, when Telegram is on.
    pub telegram: Option<FakeTelegram>,
    /// With the board: the proxy between browsers and the broadcaster, so a
    /// test can cut the live feed without stopping the broadcaster.
    pub board_proxy: Option<TcpProxy>,
    /// In webhook mode: ingress' webhook URL and the secret Telegram must send.
    pub telegram_webhook: Option<(String, String)>,
    nats_client: async_nats::Client,
    // Dropped in this order: services are told to stop before their
    // database and streams are removed.
    tasks: ServiceTasks,
    cleanup: Cleanup,
}

/// Workers, ingress and broadcaster, ingress ready to accept jobs.
pub async fn spawn_app() -> anyhow::Result<TestApp> {
    let urls = ServiceUrls::get()?;
    let nats_url = urls.nats.clone();
    TestApp::start(urls, nats_url, true, Telegram::Off, false, Backend::Jetstream).await
}

/// [`spawn_app`] with the jobs queue on `backend`: the two-broker
/// conformance tests run each of their cases on both.
pub async fn spawn_app_on(backend: Backend) -> anyhow::Result<TestApp> {
    let urls = ServiceUrls::get()?;
    let nats_url = urls.nats.clone();
    TestApp::start(urls, nats_url, true, Telegram::Off, false, backend).await
}

/// [`spawn_app`] with Telegram on: the broadcaster delivers notifications to,
/// and its bot polls, a fake Bot API started for this test ([`TestApp::telegram`]).
pub async fn spawn_app_with_telegram() -> anyhow::Result<TestApp> {
    let urls = ServiceUrls::get()?;
    let nats_url = urls.nats.clone();
    TestApp::start(urls, nats_url, true, Telegram::Polling, false, Backend::Jetstream).await
}

/// [`spawn_app_with_telegram`] in webhook mode: the bot registers ingress'
/// `POST /api/v1/telegram/webhook` with the fake, which then posts updates
/// there; the bot reads them from `GAD_TELEGRAM`.
pub async fn spawn_app_with_telegram_webhook() -> anyhow::Result<TestApp> {
    let urls = ServiceUrls::get()?;
    let nats_url = urls.nats.clone();
    TestApp::start(urls, nats_url, true, Telegram::Webhook, false, Backend::Jetstream).await
}

/// [`spawn_app`] for a browser: ingress' board page points at this test's
/// broadcaster (`ingress.board.ws_url`), and its operators' view reads that
/// broadcaster's `/ws/stats`.
pub async fn spawn_app_with_board() -> anyhow::Result<TestApp> {
    let urls = ServiceUrls::get()?;
    let nats_url = urls.nats.clone();
    TestApp::start(urls, nats_url, true, Telegram::Off, true, Backend::Jetstream).await
}

/// Whether and how a test's broadcaster talks to the fake Bot API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Telegram {
    Off,
    Polling,
    Webhook,
}

/// Ingress alone, its NATS URL pointing at a port nothing listens on: what a
/// client sees while NATS is down. The test's prefixes still name (absent)
/// streams on the real server, so a test can check nothing reached it.
pub async fn spawn_ingress_with_dead_nats() -> anyhow::Result<TestApp> {
    let urls = ServiceUrls::get()?;
    let dead = format!("nats://127.0.0.1:{}", unused_port()?);
    TestApp::start(urls, dead, false, Telegram::Off, false, Backend::Jetstream).await
}

/// A port that was free a moment ago: bound to port 0, noted, released.
pub fn unused_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl TestApp {
    /// `ingress_nats`: the NATS URL ingress gets; `full`: also start workers
    /// and broadcaster (which need the real server) and wait for readiness;
    /// `telegram`: also start a fake Bot API and point the broadcaster at it;
    /// `board`: tell ingress where the broadcaster will listen.
    async fn start(
        urls: &ServiceUrls,
        ingress_nats: String,
        full: bool,
        telegram: Telegram,
        board: bool,
        backend: Backend,
    ) -> anyhow::Result<Self> {
        init_tracing();
        urls.check_nats().await?;
        let mut isolation = Isolation::create(urls).await?;
        isolation.queue.backend = backend;
        // From here on, an early return still removes what was created.
        let cleanup = Cleanup::new(urls, &isolation.database.name, &isolation.nats, &isolation.queue);
        let mut tasks = ServiceTasks::new(CancellationToken::new());

        let workers_health = if full {
            Some(workers::start(&isolation, &mut tasks).await?)
        } else {
            None
        };
        let ingress_nats = NatsSettings {
            url: ingress_nats,
            ..isolation.nats.clone()
        };
        let webhook_secret = (telegram == Telegram::Webhook).then(|| format!("{:032x}", rand::random::<u128>()));
        let mut ingress_settings = ingress::settings(&isolation, ingress_nats);
        ingress_settings.ingress.telegram_webhook_secret = webhook_secret.clone().map(Secret::new);
        // Ingress starts first and must name the broadcaster's address: a
        // port picked now, bound by the broadcaster a moment later.
        let ws_port = if board { Some(unused_port()?) } else { None };
        let mut board_proxy = None;
        if let Some(port) = ws_port {
            let proxy = TcpProxy::start(SocketAddr::from(([127, 0, 0, 1], port))).await?;
            ingress_settings.ingress.board.ws_url = format!("ws://{}/ws/connect", proxy.addr());
            ingress_settings.ingress.broadcaster_stats_url = Some(format!("http://127.0.0.1:{port}/ws/stats"));
            board_proxy = Some(proxy);
        }
        let ingress_addr = ingress::start_with(ingress_settings, full.then_some(READY_WITHIN), &mut tasks).await?;
        let telegram_webhook =
            webhook_secret.map(|secret| (format!("http://{ingress_addr}{}", telegram_webhook::PATH), secret));
        let fake = match telegram {
            Telegram::Off => None,
            Telegram::Polling | Telegram::Webhook => {
                Some(FakeTelegram::start(SocketAddr::from(([127, 0, 0, 1], 0))).await?)
            }
        };
        let ws_addr = if full {
            let api = fake.as_ref().map(FakeTelegram::url);
            let mut settings = broadcaster::settings(&isolation, api.as_deref());
            if let Some(port) = ws_port {
                settings.broadcaster.bind = SocketAddr::from(([127, 0, 0, 1], port));
            }
            if let Some((url, secret)) = &telegram_webhook {
                settings.telegram.updates = UpdateSource::Webhook;
                settings.telegram.webhook_url = Some(url.clone());
                settings.telegram.webhook_secret = Some(secret.clone());
            }
            Some(broadcaster::start_with(settings, &mut tasks).await?)
        } else {
            None
        };

        let db = PgPoolOptions::new()
            .max_connections(4)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&isolation.postgres.url)
            .await
            .context("connecting to the test database")?;
        let (nats_client, js) = topology::connect(&isolation.nats).await.context("connecting to NATS")?;
        let auth = &isolation.auth;
        Ok(TestApp {
            http: format!("http://{ingress_addr}"),
            ws: ws_addr.map(|a| format!("ws://{a}")),
            client: http_client()?,
            admin: SeedUser::load(&db, auth, users::ADMIN).await?,
            supervisor: SeedUser::load(&db, auth, users::SUPERVISOR).await?,
            efectivo: SeedUser::load(&db, auth, users::EFECTIVO).await?,
            db,
            js,
            topology: Topology::new(&isolation.nats),
            workers_health,
            telegram: fake,
            telegram_webhook,
            board_proxy,
            nats_client,
            isolation,
            tasks,
            cleanup,
        })
    }

    /// Opens a WebSocket to the broadcaster with `?token=` and reads nothing yet.
    pub async fn ws_connect(&self, token: &str) -> anyhow::Result<WsClient> {
        let base = self.ws.as_deref().context("this test app has no broadcaster")?;
        WsClient::connect(&format!("{base}/ws/connect?token={token}")).await
    }

    /// Stops the services (each within its grace period), then removes the
    /// test's streams, buckets and database. Errors are reported, not hidden.
    pub async fn stop(self) -> anyhow::Result<()> {
        let TestApp {
            client,
            db,
            nats_client,
            mut tasks,
            mut cleanup,
            board_proxy,
            ..
        } = self;
        drop(client);
        if let Some(proxy) = board_proxy {
            proxy.stop().await;
        }
        let stopped = tasks.stop().await;
        db.close().await;
        let _ = nats_client.flush().await;
        drop(nats_client);
        let cleaned = cleanup.run().await;
        stopped.and(cleaned)
    }
}

/// Logs of the services, shown by the test runner when a test fails.
/// `TEST_LOG` sets the filter (default `warn`).
fn init_tracing() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let filter = std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into());
        let telemetry = gad_shared::telemetry::init_tracing(
            &TelemetrySettings {
                log_filter: filter,
                ..TelemetrySettings::default()
            },
            "gad-tests",
        );
        // No span export here: the guard holds nothing worth flushing.
        drop(telemetry);
    });
}

/// The environment every service of a test runs in.
pub(crate) const ENVIRONMENT: Environment = Environment::Test;
