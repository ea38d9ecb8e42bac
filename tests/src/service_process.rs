//! A service binary (`gad-workers`, `gad-broadcaster`) run as an OS process,
//! for tests that must kill it (`kill -9`) or signal it (SIGTERM) and read
//! its exit code. It gets a TOML file built from the test's [`Isolation`] and
//! nothing from the test's environment, so a developer's `GAD_*` variables
//! cannot leak in.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use gad_shared::queue::Backend;
use tokio::process::{Child, Command};

use crate::app::unused_port;
use crate::binaries;
use crate::isolation::Isolation;

/// The services a test runs as processes: the binary, and where its
/// listening addresses go in its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Workers,
    Broadcaster,
}

impl Service {
    fn binary(self) -> &'static str {
        match self {
            Service::Workers => "gad-workers",
            Service::Broadcaster => "gad-broadcaster",
        }
    }
    fn section(self) -> &'static str {
        match self {
            Service::Workers => "workers",
            Service::Broadcaster => "broadcaster",
        }
    }
    /// The address that answers `/health/ready` (the broadcaster's is also
    /// its WebSocket address).
    fn bind_key(self) -> &'static str {
        match self {
            Service::Workers => "health_bind",
            Service::Broadcaster => "bind",
        }
    }
}

/// Settings as TOML sections: `set("workers", "concurrency", "4")` writes
/// `concurrency = 4` under `[workers]`. Values are TOML literals.
#[derive(Debug, Clone)]
pub struct Config {
    service: Service,
    sections: BTreeMap<String, BTreeMap<String, String>>,
    /// Write the process' output to a file ([`ServiceProcess::log`]) rather
    /// than to the test's output.
    capture_log: bool,
}

impl Config {
    /// What every service process of a test shares with the test: its
    /// database, prefixes, secret and issuer.
    fn common(service: Service, iso: &Isolation) -> Self {
        let s = |v: &str| format!("{v:?}");
        let mut c = Config {
            service,
            sections: BTreeMap::new(),
            capture_log: false,
        };
        c.set("", "environment", "\"test\"");
        c.set("nats", "url", &s(&iso.nats.url));
        c.set("nats", "stream_prefix", &s(&iso.nats.stream_prefix));
        c.set("nats", "subject_prefix", &s(&iso.nats.subject_prefix));
        c.set("nats", "jobs_max_bytes", &iso.nats.jobs_max_bytes.to_string());
        c.set("nats", "events_max_bytes", &iso.nats.events_max_bytes.to_string());
        c.set("nats", "dlq_max_bytes", &iso.nats.dlq_max_bytes.to_string());
        let backend = match iso.queue.backend {
            Backend::Jetstream => "jetstream",
            Backend::Rabbitmq => "rabbitmq",
        };
        c.set("queue", "backend", &s(backend));
        let rabbit = &iso.queue.rabbitmq;
        c.set("queue.rabbitmq", "url", &s(&rabbit.url));
        c.set("queue.rabbitmq", "delivery_limit", &rabbit.delivery_limit.to_string());
        let buckets: Vec<String> = rabbit
            .retry_buckets
            .iter()
            .map(|b| format!("\"{}ms\"", b.as_millis()))
            .collect();
        c.set("queue.rabbitmq", "retry_buckets", &format!("[{}]", buckets.join(", ")));
        c.set("postgres", "url", &s(&iso.postgres.url));
        c.set("redis", "url", &s(&iso.redis.url));
        c.set("auth", "jwt_secret", &s(&iso.auth.jwt_secret));
        c.set("auth", "issuer", &s(iso.auth.issuer()));
        c.set(
            "telemetry",
            "log_filter",
            &s(&std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into())),
        );
        c
    }

    /// A worker process: the common settings and the test-sized limits of
    /// `crate::workers::settings`.
    pub fn workers(iso: &Isolation) -> Self {
        let d = |v: Duration| format!("\"{}ms\"", v.as_millis());
        let mut c = Self::common(Service::Workers, iso);
        c.set("postgres", "pool_size", &iso.postgres.pool_size.to_string());
        c.set("workers", "migrate_on_start", "false");
        c.set("workers", "backoff_base", &d(Duration::from_millis(50)));
        c.set("workers", "backoff_cap", &d(Duration::from_secs(1)));
        c.set("workers", "shutdown_grace", &d(Duration::from_secs(2)));
        c.set("workers.default_group", "concurrency", "4");
        c.set("workers.default_group", "max_ack_pending", "64");
        c
    }

    /// A broadcaster process: the common settings and the test's shortened waits.
    pub fn broadcaster(iso: &Isolation) -> Self {
        let mut c = Self::common(Service::Broadcaster, iso);
        c.set("postgres", "pool_size", "2");
        c.set("broadcaster", "shutdown_grace", "\"2s\"");
        c.set("broadcaster", "drain_spread", "\"500ms\"");
        c
    }

    /// Keeps the process' log lines, at `filter` (an `EnvFilter`), for
    /// [`ServiceProcess::log`].
    pub fn capture_log(&mut self, filter: &str) -> &mut Self {
        self.capture_log = true;
        self.set("telemetry", "log_filter", &format!("{filter:?}"))
    }

    pub fn set(&mut self, section: &str, key: &str, value: &str) -> &mut Self {
        self.sections
            .entry(section.to_string())
            .or_default()
            .insert(key.to_string(), value.to_string());
        self
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        // Top-level keys must come before any table.
        if let Some(top) = self.sections.get("") {
            for (k, v) in top {
                out.push_str(&format!("{k} = {v}\n"));
            }
        }
        for (section, keys) in self.sections.iter().filter(|(s, _)| !s.is_empty()) {
            out.push_str(&format!("\n[{section}]\n"));
            for (k, v) in keys {
                out.push_str(&format!("{k} = {v}\n"));
            }
        }
        out
    }
}

const LOG_FILE: &str = "output.log";

/// A running service process; killed if dropped while running.
pub struct ServiceProcess {
    service: Service,
    child: Child,
    /// Where `/health/ready` answers (the broadcaster's WebSocket address too).
    pub addr: SocketAddr,
    pub metrics: SocketAddr,
    dir: PathBuf,
}

pub type WorkerProcess = ServiceProcess;
pub type BroadcasterProcess = ServiceProcess;

impl ServiceProcess {
    /// Starts the service `config` is for (building the binary if stale) on
    /// free ports and waits until its readiness endpoint says ok.
    pub async fn start(mut config: Config, ready_within: Duration) -> anyhow::Result<Self> {
        let service = config.service;
        let name = service.binary();
        let binary = tokio::task::spawn_blocking(move || binaries::binary(name, name)).await??;
        let addr = SocketAddr::from(([127, 0, 0, 1], unused_port()?));
        let metrics = SocketAddr::from(([127, 0, 0, 1], unused_port()?));
        config.set(service.section(), service.bind_key(), &format!("\"{addr}\""));
        config.set(service.section(), "metrics_bind", &format!("\"{metrics}\""));
        let dir = std::env::temp_dir().join(format!("gad-e2e-{}-{:016x}", service.section(), rand::random::<u64>()));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join(format!("{}.toml", service.section()));
        std::fs::write(&file, config.render())?;
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("GAD_CONFIG", &file)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if config.capture_log {
            let log = std::fs::File::create(dir.join(LOG_FILE))?;
            command.stdout(log.try_clone()?).stderr(log);
        }
        let child = command.spawn().with_context(|| format!("starting {name}"))?;
        let mut process = Self {
            service,
            child,
            addr,
            metrics,
            dir,
        };
        process.wait_ready(ready_within).await?;
        Ok(process)
    }

    /// `ws://<addr>` (a broadcaster's WebSocket endpoint).
    pub fn ws(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// The output so far of a process started with [`Config::capture_log`].
    pub fn log(&self) -> anyhow::Result<String> {
        std::fs::read_to_string(self.dir.join(LOG_FILE)).context("the process' log (Config::capture_log)")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    async fn wait_ready(&mut self, within: Duration) -> anyhow::Result<()> {
        let name = self.service.binary();
        let client = reqwest::Client::builder().timeout(Duration::from_secs(1)).build()?;
        let url = format!("http://{}/health/ready", self.addr);
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("{name} exited during start: {status}");
            }
            if let Ok(r) = client.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("{name} not ready within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends `signal` (e.g. "TERM", "KILL") with kill(1).
    pub async fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.pid().context("the process has exited already")?;
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .await?;
        anyhow::ensure!(status.success(), "kill -{signal} {pid}: {status}");
        Ok(())
    }

    /// Waits for the process to exit; fails after `within`.
    pub async fn wait(&mut self, within: Duration) -> anyhow::Result<ExitStatus> {
        let name = self.service.binary();
        tokio::time::timeout(within, self.child.wait())
            .await
            .with_context(|| format!("{name} still running after {within:?}"))?
            .with_context(|| format!("waiting for {name}"))
    }

    /// Its Prometheus endpoint's text.
    pub async fn scrape(&self) -> anyhow::Result<String> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(1)).build()?;
        let url = format!("http://{}/metrics", self.metrics);
        Ok(client.get(url).send().await?.error_for_status()?.text().await?)
    }

    /// One gauge or counter from its Prometheus endpoint (`name{labels}` as
    /// written there, e.g. `gad_breaker_state{dependency="postgres"}`).
    pub async fn metric(&self, series: &str) -> anyhow::Result<Option<f64>> {
        let text = self.scrape().await?;
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok()))
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
