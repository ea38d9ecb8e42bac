//! Typed configuration shared by every binary.
//!
//! Values come from serde defaults, then an optional TOML file named by
//! `GAD_CONFIG`, then `GAD_`-prefixed environment variables with `__` between
//! levels (`GAD_NATS__URL`). Unknown keys are rejected so a typo stops the
//! process at start instead of being silently ignored. Each binary reads the
//! common sections plus its own (`ingress`, `workers`, `broadcaster`); the
//! other binaries' sections are skipped so one environment can serve all three.

use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Where the process runs; production disables test-only routes and seeding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    #[default]
    Development,
    Test,
    Production,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Test => "test",
            Environment::Production => "production",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsSettings {
    /// Server URL, or a comma-separated list of a cluster's nodes (each is
    /// tried, and reconnected to, in turn); servers >= 2.11 with JetStream.
    pub url: String,
    /// Prepended to every stream and bucket name (`T1_GAD_JOBS`) so tests and
    /// tenants can share one server.
    pub stream_prefix: String,
    /// Prepended to every subject (`t1.gad.jobs.geo.nearest`).
    pub subject_prefix: String,
    /// Connect timeout.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Wait for a JetStream publish acknowledgement (PubAck) or API reply.
    #[serde(with = "humantime_serde")]
    pub publish_timeout: Duration,
    /// Publishes allowed to wait for their acknowledgement at once.
    pub max_ack_inflight: usize,
    /// Size cap of the jobs stream, bytes; past it new jobs are refused.
    pub jobs_max_bytes: i64,
    /// Size cap of the events stream, bytes.
    pub events_max_bytes: i64,
    /// Size cap of the dead-letter stream, bytes.
    pub dlq_max_bytes: i64,
    /// Replicas of each stream and bucket (3 in a production cluster).
    pub replicas: usize,
    /// CA certificate (PEM) the server is verified against; TLS is then
    /// required. A `tls://` URL without it verifies against the system roots.
    pub tls_ca_file: Option<std::path::PathBuf>,
}

impl Default for NatsSettings {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            stream_prefix: String::new(),
            subject_prefix: String::new(),
            connect_timeout: Duration::from_secs(2),
            publish_timeout: Duration::from_secs(2),
            max_ack_inflight: 4096,
            jobs_max_bytes: 1 << 30,
            events_max_bytes: 1 << 30,
            dlq_max_bytes: 256 << 20,
            replicas: 1,
            tls_ca_file: None,
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresSettings {
    /// Connection URL (may carry a password: never logged).
    pub url: String,
    /// Pool size; min = max so no query pays the connection warm-up.
    pub pool_size: u32,
    /// Wait for a free pooled connection.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// Connect timeout for a new connection.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// `statement_timeout` for ordinary SQL.
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
    /// `statement_timeout` for PostGIS KNN queries.
    #[serde(with = "humantime_serde")]
    pub knn_timeout: Duration,
    /// CA certificate (PEM) the server is verified against (`verify-full`
    /// unless the URL says `sslmode=verify-ca`); the URL's `sslrootcert`
    /// works too. `sslmode=require`, `prefer` and `allow` are refused.
    pub tls_ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("url", &"<redacted>")
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl Default for PostgresSettings {
    fn default() -> Self {
        Self {
            url: "postgres://postgres@127.0.0.1:5432/gad".into(),
            pool_size: 10,
            acquire_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
            knn_timeout: Duration::from_secs(3),
            tls_ca_file: None,
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    /// Connection URL (may carry a password: never logged).
    pub url: String,
    /// Per-command timeout.
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// Connect timeout.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// CA certificate (PEM) a `rediss://` server is verified against; without
    /// it, the system roots.
    pub tls_ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            command_timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(1),
            tls_ca_file: None,
        }
    }
}

#[derive(Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// HS256 key, at least 32 bytes. No default: a process refuses to start without it.
    pub jwt_secret: String,
    /// `iss` claim written and required.
    pub issuer: Option<String>,
    /// Lifetime of an access token.
    #[serde(with = "humantime_serde::option")]
    pub token_ttl: Option<Duration>,
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("jwt_secret", &"<redacted>")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl AuthSettings {
    pub fn issuer(&self) -> &str {
        self.issuer.as_deref().unwrap_or("gad")
    }
    pub fn token_ttl(&self) -> Duration {
        self.token_ttl.unwrap_or(Duration::from_secs(30 * 60))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    /// `tracing` filter directive, e.g. `info,gad_workers=debug`.
    pub log_filter: String,
    /// JSON lines (production) instead of human-readable text.
    pub json_logs: bool,
    /// OTLP/HTTP (protobuf) traces URL, e.g. `http://127.0.0.1:4318/v1/traces`;
    /// none = no span export (trace ids are still logged and propagated).
    pub otlp_endpoint: Option<String>,
    /// One export request to the collector.
    #[serde(with = "humantime_serde")]
    pub otlp_timeout: Duration,
    /// Finished spans held for export; further ones are dropped, never waited for.
    pub otlp_queue: usize,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_filter: "info".into(),
            json_logs: false,
            otlp_endpoint: None,
            otlp_timeout: Duration::from_secs(5),
            otlp_queue: 2048,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    #[error("invalid configuration: {key}: {reason}")]
    Rule { key: &'static str, reason: String },
}

/// Top-level sections only one binary reads, with that binary's section:
/// the others skip them in the environment, so one environment serves all
/// three (`telegram` is the broadcaster's: its bot and deliveries).
const OWNED_SECTIONS: [(&str, &str); 4] = [
    ("ingress", "ingress"),
    ("workers", "workers"),
    ("broadcaster", "broadcaster"),
    ("telegram", "broadcaster"),
];

/// Loads a binary's settings; `own_section` is the one service section it reads.
pub fn load<T: DeserializeOwned>(own_section: &str) -> Result<T, SettingsError> {
    let mut figment = Figment::new();
    if let Ok(path) = std::env::var("GAD_CONFIG") {
        figment = figment.merge(Toml::file_exact(path));
    }
    let own = own_section.to_string();
    let env = Env::prefixed("GAD_")
        // Not settings: where the file is, and `gad seed`'s own flag.
        .ignore(&["CONFIG", "SEED_PASSWORD"])
        .split("__")
        .filter(move |key| reads(&own, key.as_str()));
    figment
        .merge(env)
        .extract()
        .map_err(|e| SettingsError::Invalid(Box::new(e)))
}

/// Whether the binary reading `own_section` takes the environment key `key`
/// (a dotted path, as written in the environment: upper case).
fn reads(own_section: &str, key: &str) -> bool {
    let top = key.split('.').next().unwrap_or_default();
    OWNED_SECTIONS
        .iter()
        .find(|(section, _)| section.eq_ignore_ascii_case(top))
        .is_none_or(|(_, owner)| owner.eq_ignore_ascii_case(own_section))
}

/// Start-up checks that serde cannot express.
pub fn check_jwt_secret(auth: &AuthSettings) -> Result<(), SettingsError> {
    if auth.jwt_secret.len() < 32 {
        return Err(SettingsError::Rule {
            key: "auth.jwt_secret (GAD_AUTH__JWT_SECRET)",
            reason: "must be set to at least 32 bytes".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{NatsSettings, load, reads};

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Probe {
        nats: NatsSettings,
    }

    #[test]
    #[expect(
        clippy::result_large_err,
        reason = "figment's Jail takes a closure returning figment's (large) error"
    )]
    fn the_seed_password_flag_is_not_taken_for_a_setting() {
        figment::Jail::expect_with(|jail| {
            // Only what this test sets: CI runs with the services' GAD_* URLs.
            jail.clear_env();
            jail.set_env("GAD_SEED_PASSWORD", "demo-password-1");
            jail.set_env("GAD_NATS__URL", "nats://10.0.0.1:4222");
            let probe: Probe = load("workers").map_err(|e| e.to_string())?;
            assert_eq!(probe.nats.url, "nats://10.0.0.1:4222");
            jail.set_env("GAD_SEED_PASSWORDS", "x");
            assert!(
                load::<Probe>("workers").is_err(),
                "an unknown key still stops the process"
            );
            Ok(())
        });
    }

    #[test]
    fn each_binary_reads_the_common_sections_and_its_own() {
        assert!(reads("ingress", "NATS.URL"));
        assert!(reads("ingress", "INGRESS.BIND"));
        assert!(!reads("ingress", "WORKERS.GROUPS"));
        // The broadcaster's Telegram keys do not stop ingress or the workers.
        assert!(reads("broadcaster", "TELEGRAM.BOT_TOKEN"));
        assert!(!reads("ingress", "TELEGRAM.BOT_TOKEN"));
        assert!(!reads("workers", "telegram.api_url"));
    }
}
