//! A service binary (`gad-workers`) run as an OS process, for tests that
//! must kill it (`kill -9`) or signal it (SIGTERM) and read its exit code.
//! It gets a TOML file built from the test's [`Isolation`] and nothing from
//! the test's environment, so a developer's `GAD_*` variables cannot leak in.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use crate::app::unused_port;
use crate::binaries;
use crate::isolation::Isolation;

/// Settings as TOML sections: `set("workers", "concurrency", "4")` writes
/// `concurrency = 4` under `[workers]`. Values are TOML literals.
#[derive(Debug, Clone, Default)]
pub struct Config {
    sections: BTreeMap<String, BTreeMap<String, String>>,
}

impl Config {
    /// What every worker process of a test shares: its database, prefixes
    /// and secret, and the test-sized limits of `crate::workers::settings`.
    pub fn workers(iso: &Isolation) -> Self {
        let s = |v: &str| format!("{v:?}");
        let d = |v: Duration| format!("\"{}ms\"", v.as_millis());
        let mut c = Config::default();
        c.set("", "environment", "\"test\"");
        c.set("nats", "url", &s(&iso.nats.url));
        c.set("nats", "stream_prefix", &s(&iso.nats.stream_prefix));
        c.set("nats", "subject_prefix", &s(&iso.nats.subject_prefix));
        c.set("nats", "jobs_max_bytes", &iso.nats.jobs_max_bytes.to_string());
        c.set("nats", "events_max_bytes", &iso.nats.events_max_bytes.to_string());
        c.set("nats", "dlq_max_bytes", &iso.nats.dlq_max_bytes.to_string());
        c.set("postgres", "url", &s(&iso.postgres.url));
        c.set("postgres", "pool_size", &iso.postgres.pool_size.to_string());
        c.set("redis", "url", &s(&iso.redis.url));
        c.set("auth", "jwt_secret", &s(&iso.auth.jwt_secret));
        c.set(
            "telemetry",
            "log_filter",
            &s(&std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into())),
        );
        c.set("workers", "migrate_on_start", "false");
        c.set("workers", "backoff_base", &d(Duration::from_millis(50)));
        c.set("workers", "backoff_cap", &d(Duration::from_secs(1)));
        c.set("workers", "shutdown_grace", &d(Duration::from_secs(2)));
        c.set("workers.default_group", "concurrency", "4");
        c.set("workers.default_group", "max_ack_pending", "64");
        c
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

/// A running `gad-workers` process; killed if dropped while running.
pub struct WorkerProcess {
    child: Child,
    pub health: SocketAddr,
    pub metrics: SocketAddr,
    dir: PathBuf,
}

impl WorkerProcess {
    /// Starts the process and waits until its readiness endpoint says ok.
    pub async fn start(mut config: Config, ready_within: Duration) -> anyhow::Result<Self> {
        let binary = tokio::task::spawn_blocking(|| binaries::binary("gad-workers", "gad-workers")).await??;
        let health = SocketAddr::from(([127, 0, 0, 1], unused_port()?));
        let metrics = SocketAddr::from(([127, 0, 0, 1], unused_port()?));
        config.set("workers", "health_bind", &format!("\"{health}\""));
        config.set("workers", "metrics_bind", &format!("\"{metrics}\""));
        let dir = std::env::temp_dir().join(format!("gad-e2e-workers-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("workers.toml");
        std::fs::write(&file, config.render())?;
        let child = Command::new(binary)
            .env_clear()
            .env("GAD_CONFIG", &file)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting gad-workers")?;
        let mut process = Self {
            child,
            health,
            metrics,
            dir,
        };
        process.wait_ready(ready_within).await?;
        Ok(process)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    async fn wait_ready(&mut self, within: Duration) -> anyhow::Result<()> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(1)).build()?;
        let url = format!("http://{}/health/ready", self.health);
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("gad-workers exited during start: {status}");
            }
            if let Ok(r) = client.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("gad-workers not ready within {within:?}");
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
        tokio::time::timeout(within, self.child.wait())
            .await
            .with_context(|| format!("gad-workers still running after {within:?}"))?
            .context("waiting for gad-workers")
    }

    /// One gauge or counter from its Prometheus endpoint (`name{labels}` as
    /// written there, e.g. `gad_breaker_state{dependency="postgres"}`).
    pub async fn metric(&self, series: &str) -> anyhow::Result<Option<f64>> {
        let text = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()?
            .get(format!("http://{}/metrics", self.metrics))
            .send()
            .await?
            .text()
            .await?;
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok()))
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
