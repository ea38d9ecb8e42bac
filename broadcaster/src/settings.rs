//! Broadcaster configuration (see `gad_shared::settings` for sources and rules).

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use gad_shared::settings::{
    AuthSettings, Environment, NatsSettings, PostgresSettings, RedisSettings, SettingsError, TelemetrySettings,
};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct BroadcasterSettings {
    pub environment: Environment,
    pub nats: NatsSettings,
    /// Which broker carries the jobs (`queue.backend`), and RabbitMQ's settings.
    pub queue: gad_shared::queue::QueueSettings,
    /// Notification rows, link codes and the bot's reads.
    pub postgres: PostgresSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    pub telemetry: TelemetrySettings,
    pub broadcaster: BroadcasterSection,
    pub telegram: TelegramSection,
}

impl BroadcasterSettings {
    /// Start-up checks serde cannot express: a mistake here stops the start
    /// rather than surfacing at the first bot answer or the first connection.
    pub fn check(&self) -> Result<(), SettingsError> {
        gad_shared::settings::check_jwt_secret(&self.auth)?;
        // PostgreSQL would refuse an unknown zone only when the bot first
        // shows a date, as an error to that user.
        if let Err(e) = jiff::tz::TimeZone::get(&self.telegram.time_zone) {
            return Err(SettingsError::Rule {
                key: "telegram.time_zone (GAD_TELEGRAM__TIME_ZONE)",
                reason: format!("{:?} is not an IANA time zone: {e}", self.telegram.time_zone),
            });
        }
        Ok(())
    }
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
    /// Kernel send buffer of each accepted socket, in bytes; unset leaves
    /// the kernel's autotuning (up to megabytes per socket). Small, a client
    /// that stops reading is noticed sooner, and idle sockets cost less.
    pub socket_send_buffer: Option<usize>,
    /// Longest a write to one socket may take.
    #[serde(with = "humantime_serde")]
    pub write_deadline: Duration,
    /// How long a closing connection keeps trying to deliver its close
    /// frame (behind the frames already written) before dropping the socket.
    #[serde(with = "humantime_serde")]
    pub close_linger: Duration,
    /// Application-level `ping` interval.
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    /// Consecutive unanswered pings after which the connection closes (4001).
    pub missed_pongs: u32,
    /// Connections this node accepts before answering 1013.
    pub max_connections: usize,
    /// Connections one usuario may hold on this node before 1013.
    pub max_connections_per_user: usize,
    /// New connections this node accepts per second, sustained, before
    /// answering 1013: after a replica dies its clients all come back at
    /// once, and the handshakes and resumes must not starve live delivery.
    /// At least 1 (0 is refused when the settings load).
    pub new_connections_per_second: NonZeroU32,
    /// New connections accepted at once above the sustained rate.
    pub new_connections_burst: NonZeroU32,
    /// Events kept per topic for `resume`.
    pub history_events_per_topic: usize,
    /// Events older than this leave the resume history.
    #[serde(with = "humantime_serde")]
    pub history_max_age: Duration,
    /// Memory the resume history may use, in bytes, across all topics.
    pub history_max_bytes: usize,
    /// Longest a reading of `GAD_EVENTS` for a resume may wait for one
    /// answer (stream info, or its next message).
    #[serde(with = "humantime_serde")]
    pub resume_read_timeout: Duration,
    /// Longest one `resume` may take, stream reading and catching up with
    /// live events included; past it the connection closes as slow (4000).
    #[serde(with = "humantime_serde")]
    pub resume_timeout: Duration,
    /// Largest client frame accepted.
    pub max_client_frame_bytes: usize,
    /// Time given to close connections after SIGTERM.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Closes after SIGTERM are spread evenly over this span, so clients do
    /// not all reconnect elsewhere at once; keep it below `shutdown_grace`.
    #[serde(with = "humantime_serde")]
    pub drain_spread: Duration,
}

impl Default for BroadcasterSection {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8090)),
            metrics_bind: Some(SocketAddr::from(([127, 0, 0, 1], 9182))),
            queue_frames: 2000,
            queue_bytes: 1 << 20,
            socket_send_buffer: None,
            write_deadline: Duration::from_secs(5),
            close_linger: Duration::from_secs(5),
            ping_interval: Duration::from_secs(15),
            missed_pongs: 2,
            max_connections: 10_000,
            max_connections_per_user: 10,
            new_connections_per_second: NonZeroU32::new(500).unwrap_or(NonZeroU32::MIN),
            new_connections_burst: NonZeroU32::new(1000).unwrap_or(NonZeroU32::MIN),
            history_events_per_topic: 10_000,
            history_max_age: Duration::from_secs(15 * 60),
            history_max_bytes: 256 << 20,
            resume_read_timeout: Duration::from_secs(5),
            resume_timeout: Duration::from_secs(30),
            max_client_frame_bytes: 16 * 1024,
            shutdown_grace: Duration::from_secs(35),
            drain_spread: Duration::from_secs(30),
        }
    }
}

/// The Telegram side: notification delivery and the bot. Without a
/// `bot_token` neither runs (WebSocket delivery does not need Telegram).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelegramSection {
    /// Bot API token (secret: never logged). `None` disables Telegram.
    pub bot_token: Option<String>,
    /// Bot API base URL; tests and the local run point it at the fake server.
    pub api_url: String,
    /// Longest one Bot API call may take (long polls add their own wait).
    #[serde(with = "humantime_serde")]
    pub api_timeout: Duration,
    /// Minimum spacing of messages to one chat, cluster-wide. Telegram
    /// counts arrivals, and a send can reach it later than its slot (on a busy
    /// machine two arrivals for one chat came 918 ms apart with a 1 s
    /// spacing): the default keeps a margin above the 1 s Telegram allows.
    #[serde(with = "humantime_serde")]
    pub per_chat_interval: Duration,
    /// Messages per second the whole bot may send, cluster-wide.
    pub per_bot_per_second: u32,
    /// Broadcaster replicas: with Redis down each falls back to
    /// `per_bot_per_second / replicas` on its own.
    pub replicas: u32,
    /// Sends in flight at once on this replica.
    pub concurrency: usize,
    /// Retry delay after a 5xx or a network error: exponential, full jitter.
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    #[serde(with = "humantime_serde")]
    pub backoff_cap: Duration,
    /// A notification still undelivered this long after it was written is `failed`.
    #[serde(with = "humantime_serde")]
    pub give_up_after: Duration,
    /// Upper bound of the random delay added to a 429's `retry_after`.
    #[serde(with = "humantime_serde")]
    pub retry_jitter: Duration,
    /// Redelivery timeout of the delivery consumers; above `api_timeout` plus
    /// the limiter's longest wait.
    #[serde(with = "humantime_serde")]
    pub ack_wait: Duration,
    /// Where the bot's updates come from: `polling` (getUpdates) or
    /// `webhook` (Telegram posts to ingress, which feeds `GAD_TELEGRAM`).
    pub updates: UpdateSource,
    /// Webhook mode: the public URL of ingress' `POST /api/v1/telegram/webhook`,
    /// registered with `setWebhook` at start; `None` leaves registration to the operator.
    pub webhook_url: Option<String>,
    /// Webhook mode: the `secret_token` Telegram sends back (secret: never
    /// logged); ingress' `telegram_webhook_secret` must be the same.
    pub webhook_secret: Option<String>,
    /// `timeout` of one `getUpdates` long poll.
    #[serde(with = "humantime_serde")]
    pub poll_timeout: Duration,
    /// A wizard left alone this long is forgotten.
    #[serde(with = "humantime_serde")]
    pub wizard_idle: Duration,
    /// IANA time zone the bot shows times in (the API stays in UTC).
    pub time_zone: String,
}

/// How the bot receives updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpdateSource {
    Polling,
    Webhook,
}

impl std::fmt::Debug for TelegramSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramSection")
            .field("bot_token", &self.bot_token.as_ref().map(|_| "<redacted>"))
            .field("api_url", &self.api_url)
            .field("updates", &self.updates)
            .field("webhook_url", &self.webhook_url)
            .field("webhook_secret", &self.webhook_secret.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl Default for TelegramSection {
    fn default() -> Self {
        Self {
            bot_token: None,
            api_url: "https://api.telegram.org".into(),
            api_timeout: Duration::from_secs(5),
            per_chat_interval: Duration::from_millis(1200),
            per_bot_per_second: 25,
            replicas: 1,
            concurrency: 16,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
            give_up_after: Duration::from_secs(24 * 3600),
            retry_jitter: Duration::from_millis(500),
            ack_wait: Duration::from_secs(30),
            updates: UpdateSource::Polling,
            webhook_url: None,
            webhook_secret: None,
            poll_timeout: Duration::from_secs(10),
            wizard_idle: Duration::from_secs(30 * 60),
            time_zone: "America/Argentina/Buenos_Aires".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> BroadcasterSettings {
        let mut s = BroadcasterSettings::default();
        s.auth.jwt_secret = "k".repeat(32);
        s
    }

    #[test]
    fn the_defaults_with_a_key_pass_the_start_checks() {
        assert!(valid().check().is_ok());
    }

    #[test]
    fn an_unknown_time_zone_stops_the_start_and_names_the_key() {
        let mut s = valid();
        s.telegram.time_zone = "America/Gotham".into();
        let e = s.check().map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("telegram.time_zone") && e.contains("America/Gotham"), "{e}");
    }

    #[test]
    fn a_zero_connection_rate_stops_the_start() {
        let zero = serde_json::json!({ "new_connections_burst": 0 });
        assert!(serde_json::from_value::<BroadcasterSection>(zero).is_err());
        let one = serde_json::json!({ "new_connections_burst": 1 });
        assert!(serde_json::from_value::<BroadcasterSection>(one).is_ok());
    }
}
