//! Ingress configuration (see `gad_shared::settings` for sources and rules).

use std::net::SocketAddr;
use std::time::Duration;

use gad_shared::settings::{
    AuthSettings, Environment, NatsSettings, PostgresSettings, RedisSettings, TelemetrySettings,
};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct IngressSettings {
    pub environment: Environment,
    pub nats: NatsSettings,
    /// Which broker carries the jobs (`queue.backend`), and RabbitMQ's settings.
    pub queue: gad_shared::queue::QueueSettings,
    pub postgres: PostgresSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    pub telemetry: TelemetrySettings,
    pub ingress: IngressSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngressSection {
    /// Public HTTP address; port 0 picks a free port (tests).
    pub bind: SocketAddr,
    /// Internal Prometheus address; `None` disables the exporter.
    pub metrics_bind: Option<SocketAddr>,
    /// Floor of the end-to-end request deadline (`max(this, wait + 2 s)`).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Cap of `Prefer: wait=N`.
    #[serde(with = "humantime_serde")]
    pub max_wait: Duration,
    /// Requests that may wait for a job outcome at once; beyond it they get 202.
    pub max_waiters: usize,
    /// Grace period for in-flight requests after SIGTERM.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Peers (addresses or CIDR blocks) whose `X-Forwarded-For` / `X-Real-IP`
    /// name the client (§6.4); empty: the TCP peer is the client.
    pub trusted_proxies: Vec<crate::client::TrustedProxy>,
    /// The broadcaster's `/ws/stats`, read by `GET /api/v1/admin/ops`;
    /// `None` leaves the WebSocket figures out.
    pub broadcaster_stats_url: Option<String>,
    /// Longest wait for each source of `GET /api/v1/admin/ops` (the
    /// broadcaster, each JetStream figure); a source that misses it is `null`.
    #[serde(with = "humantime_serde")]
    pub ops_timeout: Duration,
    /// Origins (`https://board.example.org`) whose browsers may call the
    /// API with credentials; empty: no cross-origin access.
    pub cors_allowed_origins: Vec<String>,
    pub rate_limit: crate::rate_limit::RateLimitSettings,
    pub shedding: crate::shedding::SheddingSettings,
    pub admission: crate::admission::AdmissionSettings,
    /// The `secret_token` Telegram sends with webhook updates (secret: never
    /// logged). `None` (polling mode) leaves `POST /api/v1/telegram/webhook` out.
    pub telegram_webhook_secret: Option<Secret>,
    /// The operations board page (`/board`) and where it finds the live feed.
    pub board: crate::routes::board::BoardSettings,
}

/// A configured secret: compared, never shown.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Default for IngressSection {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_bind: Some(SocketAddr::from(([127, 0, 0, 1], 9180))),
            request_timeout: Duration::from_secs(10),
            max_wait: Duration::from_secs(30),
            max_waiters: 10_000,
            shutdown_grace: Duration::from_secs(25),
            trusted_proxies: Vec::new(),
            broadcaster_stats_url: Some("http://127.0.0.1:8090/ws/stats".into()),
            ops_timeout: Duration::from_secs(1),
            cors_allowed_origins: Vec::new(),
            rate_limit: Default::default(),
            shedding: Default::default(),
            admission: Default::default(),
            telegram_webhook_secret: None,
            board: Default::default(),
        }
    }
}
