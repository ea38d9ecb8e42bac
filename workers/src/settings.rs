//! Workers configuration (see `gad_shared::settings` for sources and rules).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use gad_shared::settings::{
    AuthSettings, Environment, NatsSettings, PostgresSettings, RedisSettings, TelemetrySettings,
};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct WorkersSettings {
    pub environment: Environment,
    pub nats: NatsSettings,
    /// Which broker carries the jobs (`queue.backend`), and RabbitMQ's settings.
    pub queue: gad_shared::queue::QueueSettings,
    pub postgres: PostgresSettings,
    pub redis: RedisSettings,
    /// Used only by the `gad token` command.
    pub auth: AuthSettings,
    pub telemetry: TelemetrySettings,
    pub workers: WorkersSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkersSection {
    /// Worker groups this process runs (`geo`, `tasks`, `emergency`, `import`).
    pub groups: Vec<String>,
    /// Health endpoints; port 0 picks a free port.
    pub health_bind: SocketAddr,
    /// Internal Prometheus address; `None` disables the exporter.
    pub metrics_bind: Option<SocketAddr>,
    /// Per-group limits; groups not listed use `default_group`.
    pub group: BTreeMap<String, GroupSettings>,
    pub default_group: GroupSettings,
    /// First retry delay of a transient failure (doubles per attempt, full jitter).
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    /// Longest retry delay.
    #[serde(with = "humantime_serde")]
    pub backoff_cap: Duration,
    /// Time in-flight jobs get to finish after SIGTERM.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Apply migrations at start.
    pub migrate_on_start: bool,
    /// Fallback poll of the outbox relay (it is woken by NOTIFY at commit).
    #[serde(with = "humantime_serde")]
    pub relay_poll: Duration,
    /// Period of the retention purge (old terminal jobs, notifications, audit
    /// rows past `retention_until`, published outbox rows).
    #[serde(with = "humantime_serde")]
    pub retention_interval: Duration,
    /// `JOBS_RETENTION_DAYS` (`GAD_WORKERS__JOBS_RETENTION_DAYS`): terminal
    /// `jobs` rows older than this are purged.
    pub jobs_retention_days: u32,
    /// Rows the purge deletes per statement, so no statement holds locks long.
    pub retention_batch: u32,
    /// Period of the timers loop (emergency ack timeouts, re-notifications,
    /// coalesced location events).
    #[serde(with = "humantime_serde")]
    pub timers_interval: Duration,
    /// Most read-only jobs' rows written by one statement (group commit).
    pub row_batch_max: usize,
    /// `EMERGENCY_ACK_TIMEOUT`: an emergency asignación unanswered this long is
    /// re-dispatched; the unit is reminded once at half of it.
    #[serde(with = "humantime_serde")]
    pub emergency_ack_timeout: Duration,
    /// `EMERGENCY_MAX_RADIUS_M`: dispatch only units this close; `None` = any distance.
    pub emergency_max_radius_m: Option<f64>,
    /// `EMERGENCY_MAX_POSITION_AGE`: skip units whose position is older; `None` = off.
    #[serde(with = "humantime_serde")]
    pub emergency_max_position_age: Option<Duration>,
    /// The circuit breaker on PostgreSQL (`workers.breaker.*`).
    pub breaker: BreakerSettings,
    /// Jobs published to RabbitMQ by legacy systems (`workers.amqp_bridge.*`).
    pub amqp_bridge: AmqpBridgeSettings,
}

/// The AMQP ingest bridge: off unless `url` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmqpBridgeSettings {
    /// `amqp://user:password@host:5672/vhost`; none = no bridge.
    pub url: Option<String>,
    /// Topic exchange legacy publishers send jobs to (routing key free).
    pub exchange: String,
    /// Durable quorum queue the bridge consumes, bound to the exchange with `#`.
    pub queue: String,
    /// Messages in flight (delivered, not yet acknowledged) per process.
    pub prefetch: u16,
    /// Connecting to RabbitMQ and opening the channel.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// A message JetStream did not take is published again after this long;
    /// also the wait before reconnecting, so an outage is not a busy loop.
    #[serde(with = "humantime_serde")]
    pub retry_delay: Duration,
}

impl Default for AmqpBridgeSettings {
    fn default() -> Self {
        Self {
            url: None,
            exchange: "gad.jobs".into(),
            queue: "gad.jobs.bridge".into(),
            prefetch: 64,
            connect_timeout: Duration::from_secs(5),
            retry_delay: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupSettings {
    /// Jobs run at once by this process (semaphore).
    pub concurrency: usize,
    /// Unacknowledged jobs across all processes of the group (consumer limit).
    pub max_ack_pending: i64,
    /// Redelivery after this long without an acknowledgement.
    #[serde(with = "humantime_serde")]
    pub ack_wait: Duration,
    /// Deadline of one job run; must stay below `ack_wait`.
    #[serde(with = "humantime_serde")]
    pub deadline: Duration,
}

impl Default for GroupSettings {
    fn default() -> Self {
        Self {
            concurrency: 32,
            max_ack_pending: 1024,
            ack_wait: Duration::from_secs(30),
            deadline: Duration::from_secs(20),
        }
    }
}

impl Default for WorkersSection {
    fn default() -> Self {
        Self {
            groups: gad_shared::job::GROUPS.iter().map(|g| g.to_string()).collect(),
            health_bind: SocketAddr::from(([127, 0, 0, 1], 8070)),
            metrics_bind: Some(SocketAddr::from(([127, 0, 0, 1], 9181))),
            group: BTreeMap::new(),
            default_group: GroupSettings::default(),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(25),
            migrate_on_start: true,
            relay_poll: Duration::from_millis(500),
            retention_interval: Duration::from_secs(600),
            jobs_retention_days: 30,
            retention_batch: 1000,
            timers_interval: Duration::from_secs(1),
            row_batch_max: 256,
            emergency_ack_timeout: Duration::from_secs(300),
            emergency_max_radius_m: None,
            emergency_max_position_age: None,
            breaker: BreakerSettings::default(),
            amqp_bridge: AmqpBridgeSettings::default(),
        }
    }
}

/// When the worker groups stop pulling because PostgreSQL is away.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerSettings {
    /// Consecutive transient database failures that open the breaker.
    pub failure_threshold: u32,
    /// Time the breaker stays open before a half-open probe.
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
    /// Longest wait for the probe's `SELECT 1`.
    #[serde(with = "humantime_serde")]
    pub probe_timeout: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cooldown: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(1),
        }
    }
}

impl WorkersSection {
    pub fn group(&self, name: &str) -> GroupSettings {
        self.group.get(name).copied().unwrap_or(self.default_group)
    }

    /// Checks what serde cannot: known groups, deadlines below ack waits.
    pub fn check(&self) -> Result<(), gad_shared::settings::SettingsError> {
        use gad_shared::settings::SettingsError::Rule;
        if self.breaker.failure_threshold == 0 {
            return Err(Rule {
                key: "workers.breaker.failure_threshold",
                reason: "must be at least 1".into(),
            });
        }
        if self.amqp_bridge.prefetch == 0 {
            return Err(Rule {
                key: "workers.amqp_bridge.prefetch",
                reason: "must be at least 1 (0 would mean unbounded in AMQP)".into(),
            });
        }
        for g in &self.groups {
            if !gad_shared::job::GROUPS.contains(&g.as_str()) {
                return Err(Rule {
                    key: "workers.groups",
                    reason: format!("unknown group {g:?}"),
                });
            }
            let s = self.group(g);
            if s.deadline >= s.ack_wait {
                return Err(Rule {
                    key: "workers.group.<name>.deadline",
                    reason: format!("{g}: deadline must be below ack_wait"),
                });
            }
            if s.concurrency == 0 {
                return Err(Rule {
                    key: "workers.group.<name>.concurrency",
                    reason: format!("{g}: must be at least 1"),
                });
            }
        }
        Ok(())
    }
}
