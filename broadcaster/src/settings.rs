//! Broadcaster configuration (see `gad_shared::settings` for sources and rules).

use std::net::SocketAddr;
use std::time::Duration;

use gad_shared::settings::{
    AuthSettings, Environment, NatsSettings, PostgresSettings, RedisSettings, TelemetrySettings,
};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct BroadcasterSettings {
    pub environment: Environment,
    pub nats: NatsSettings,
    /// Accepted so one environment serves all three binaries; notification
    /// rows and the bot's reads (issue 5) will use it.
    pub postgres: PostgresSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    pub telemetry: TelemetrySettings,
    pub broadcaster: BroadcasterSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BroadcasterSection {
    /// Public address of `/ws/connect`; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Internal Prometheus address; `None` disables the exporter.
    pub metrics_bind: Option<SocketAddr>,
    /// Frames a connection may have queued before it is closed as a slow consumer.
    pub queue_frames: usize,
    /// Bytes a connection may have queued before it is closed as a slow consumer.
    pub queue_bytes: usize,
    /// Longest a write to one socket may take.
    #[serde(with = "humantime_serde")]
    pub write_deadline: Duration,
    /// Application-level `ping` interval; two unanswered pings close the connection.
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    /// Connections this node accepts before answering 1013.
    pub max_connections: usize,
    /// Largest client frame accepted.
    pub max_client_frame_bytes: usize,
    /// Time given to close connections after SIGTERM.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Default for BroadcasterSection {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8090)),
            metrics_bind: Some(SocketAddr::from(([127, 0, 0, 1], 9182))),
            queue_frames: 2000,
            queue_bytes: 1 << 20,
            write_deadline: Duration::from_secs(5),
            ping_interval: Duration::from_secs(15),
            max_connections: 10_000,
            max_client_frame_bytes: 16 * 1024,
            shutdown_grace: Duration::from_secs(35),
        }
    }
}
