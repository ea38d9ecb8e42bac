//! A broadcaster run as an OS process (`gad-broadcaster`), for tests that
//! kill a replica or signal it. Like the workers' process it gets a TOML file
//! built from the test's [`Isolation`] and nothing from the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use crate::app::unused_port;
use crate::binaries;
use crate::isolation::Isolation;
use crate::service_process::Config;

/// The settings a broadcaster process of this test shares with the test:
/// database, prefixes, secret and issuer, and the test's shortened waits.
pub fn config(iso: &Isolation) -> Config {
    let s = |v: &str| format!("{v:?}");
    let mut c = Config::default();
    c.set("", "environment", "\"test\"");
    c.set("nats", "url", &s(&iso.nats.url));
    c.set("nats", "stream_prefix", &s(&iso.nats.stream_prefix));
    c.set("nats", "subject_prefix", &s(&iso.nats.subject_prefix));
    c.set("nats", "jobs_max_bytes", &iso.nats.jobs_max_bytes.to_string());
    c.set("nats", "events_max_bytes", &iso.nats.events_max_bytes.to_string());
    c.set("nats", "dlq_max_bytes", &iso.nats.dlq_max_bytes.to_string());
    c.set("postgres", "url", &s(&iso.postgres.url));
    c.set("postgres", "pool_size", "2");
    c.set("redis", "url", &s(&iso.redis.url));
    c.set("auth", "jwt_secret", &s(&iso.auth.jwt_secret));
    c.set("auth", "issuer", &s(iso.auth.issuer()));
    c.set(
        "telemetry",
        "log_filter",
        &s(&std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into())),
    );
    c.set("broadcaster", "shutdown_grace", "\"2s\"");
    c.set("broadcaster", "drain_spread", "\"500ms\"");
    c
}

/// A running `gad-broadcaster`; killed if dropped while running.
pub struct BroadcasterProcess {
    child: Child,
    pub addr: SocketAddr,
    dir: PathBuf,
}

impl BroadcasterProcess {
    /// Starts the process (building the binary if stale) and waits until it is ready.
    pub async fn start(mut config: Config, ready_within: Duration) -> anyhow::Result<Self> {
        let binary = tokio::task::spawn_blocking(|| binaries::binary("gad-broadcaster", "gad-broadcaster")).await??;
        let addr = SocketAddr::from(([127, 0, 0, 1], unused_port()?));
        let metrics = SocketAddr::from(([127, 0, 0, 1], unused_port()?));
        config.set("broadcaster", "bind", &format!("\"{addr}\""));
        config.set("broadcaster", "metrics_bind", &format!("\"{metrics}\""));
        let dir = std::env::temp_dir().join(format!("gad-e2e-broadcaster-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("broadcaster.toml");
        std::fs::write(&file, config.render())?;
        let child = Command::new(binary)
            .env_clear()
            .env("GAD_CONFIG", &file)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting gad-broadcaster")?;
        let mut process = Self { child, addr, dir };
        process.wait_ready(ready_within).await?;
        Ok(process)
    }

    /// `ws://<addr>`.
    pub fn ws(&self) -> String {
        format!("ws://{}", self.addr)
    }

    async fn wait_ready(&mut self, within: Duration) -> anyhow::Result<()> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(1)).build()?;
        let url = format!("http://{}/health/ready", self.addr);
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("gad-broadcaster exited during start: {status}");
            }
            if let Ok(r) = client.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("gad-broadcaster not ready within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
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
            .with_context(|| format!("gad-broadcaster still running after {within:?}"))?
            .context("waiting for gad-broadcaster")
    }
}

impl Drop for BroadcasterProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
