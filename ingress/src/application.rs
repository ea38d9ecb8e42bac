//! Building and running the ingress: binds its own listener (port 0 in
//! tests), so a caller learns the real address before serving starts.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::ServiceExt;
use axum::serve::ListenerExt;
use gad_shared::auth::{Revocations, TokenIssuer, TokenVerifier};
use gad_shared::queue::Publisher;
use gad_shared::redis_conn::Redis;
use gad_shared::{db, settings, topology};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

use crate::admission::Admission;
use crate::nats::Nats;
use crate::rate_limit::RateLimits;
use crate::settings::IngressSettings;
use crate::state::{AppState, Shared};
use crate::waiters::Waiters;

/// Longest wait for the RabbitMQ connection's closing handshake at shutdown.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Settings(#[from] settings::SettingsError),
    #[error("binding {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("nats: {0}")]
    Nats(#[from] async_nats::ConnectError),
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
    tracker: TaskTracker,
    /// Stops background tasks once the server has drained.
    background: CancellationToken,
}

impl Application {
    pub async fn build(settings: IngressSettings) -> Result<Self, StartError> {
        settings::check_jwt_secret(&settings.auth)?;
        if let Err(reason) = settings.ingress.board.ws_origin() {
            return Err(settings::SettingsError::Rule {
                key: "ingress.board.ws_url (GAD_INGRESS__BOARD__WS_URL)",
                reason,
            }
            .into());
        }
        let addr = settings.ingress.bind;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let (client, js) = topology::connect(&settings.nats).await?;
        let nats = Nats::new(client.clone(), js, topology::Topology::new(&settings.nats));
        let tracker = TaskTracker::new();
        let background = CancellationToken::new();
        let revocations = Revocations::default();
        nats.bootstrap(
            revocations.clone(),
            settings.auth.token_ttl(),
            background.clone(),
            &tracker,
        );
        let waiters = Waiters::new(settings.ingress.max_waiters);
        waiters.follow(client, nats.topology.job_status_updates(), background.clone(), &tracker);
        let db = db::connect(&settings.postgres, settings.postgres.statement_timeout).await?;
        db::watch_pool(db.clone(), "main");
        let http = reqwest::Client::builder()
            .timeout(settings.ingress.ops_timeout)
            .connect_timeout(settings.ingress.ops_timeout)
            .build()?;
        let publisher = Publisher::new(&settings.queue, &settings.nats, nats.js.clone(), "gad-ingress");
        let admission = Admission::new(&settings.ingress.admission);
        admission.follow(
            publisher.clone(),
            nats.topology.clone(),
            &settings.ingress.admission,
            background.clone(),
            &tracker,
        );
        let redis = Redis::new(&settings.redis);
        let rate_limits = RateLimits::new(
            &settings.ingress.rate_limit,
            redis.clone(),
            settings.redis.command_timeout,
        );
        let state = AppState::new(Shared {
            publisher,
            rate_limits,
            admission,
            verifier: TokenVerifier::new(&settings.auth, revocations),
            issuer: TokenIssuer::new(&settings.auth),
            redis,
            settings: Arc::new(settings),
            nats,
            waiters,
            db,
            draining: CancellationToken::new(),
            http,
        });
        Ok(Self {
            listener,
            state,
            tracker,
            background,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// True once NATS is bound and revocations are loaded.
    pub fn ready(&self) -> bool {
        self.state.nats.ready()
    }

    /// Serves until `shutdown` fires, then drains in-flight requests within
    /// the grace period and stops background work.
    pub async fn run_until(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let Application {
            listener,
            state,
            tracker,
            background,
        } = self;
        let grace = state.settings.ingress.shutdown_grace;
        let draining = state.draining.clone();
        let publisher = state.publisher.clone();
        let app = NormalizePathLayer::trim_trailing_slash().layer(crate::routes::router(state));
        // Nagle's algorithm would hold small responses back for tens of ms.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let signal = shutdown.clone();
        // The peer address is what `client` resolves the client from (§6.4).
        let service = ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<SocketAddr>(app);
        let server = axum::serve(listener, service).with_graceful_shutdown(async move {
            signal.cancelled().await;
            draining.cancel();
        });
        let server = tokio::spawn(async move { server.await });
        shutdown.cancelled().await;
        let result = match tokio::time::timeout(grace, server).await {
            Ok(Ok(r)) => r,
            Ok(Err(join)) => Err(std::io::Error::other(join)),
            Err(_) => {
                tracing::warn!("grace period over; dropping remaining requests");
                Ok(())
            }
        };
        background.cancel();
        tracker.close();
        tracker.wait().await;
        // A closing handshake, not a dropped socket, for RabbitMQ.
        if let Publisher::RabbitMq(link) = &publisher {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, link.close()).await;
        }
        result
    }
}
