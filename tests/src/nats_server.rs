//! A NATS server of the test's own (own port, own store directory), for
//! tests that stop and restart it. The binary is the one
//! `deploy/services.sh up` installs (`.local/venv/bin/nats-server`), else
//! `nats-server` on the PATH.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use crate::app::unused_port;
use crate::services::workspace_root;

pub struct NatsServer {
    binary: PathBuf,
    port: u16,
    store: PathBuf,
    child: Option<Child>,
}

/// The `nats-server` tests run: the one `deploy/services.sh up` installs,
/// else the PATH's.
pub fn binary() -> PathBuf {
    let local = workspace_root().join(".local/venv/bin/nats-server");
    if local.is_file() {
        local
    } else {
        PathBuf::from("nats-server")
    }
}

/// Starts `binary` with `args`, quiet, killed when the handle is dropped.
pub fn spawn<I, S>(binary: &Path, args: I) -> anyhow::Result<Child>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))
}

impl NatsServer {
    /// Starts a JetStream server on a free port and waits until it accepts clients.
    pub async fn start() -> anyhow::Result<Self> {
        let binary = binary();
        let store = std::env::temp_dir().join(format!("gad-e2e-nats-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&store)?;
        let mut server = Self {
            binary,
            port: unused_port()?,
            store,
            child: None,
        };
        server.up().await?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server again on the same port and store.
    pub async fn up(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.child.is_none(), "already running");
        let port = self.port.to_string();
        let flags = ["-a", "127.0.0.1", "-p", &port, "-js", "-sd"].map(OsStr::new);
        self.child = Some(spawn(&self.binary, flags.into_iter().chain([self.store.as_os_str()]))?);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Ok(client)) = tokio::time::timeout(Duration::from_secs(1), async_nats::connect(self.url())).await
            {
                drop(client);
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("nats-server on port {} not up within 10 s", self.port);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the server (SIGKILL: an abrupt loss, as in a crash) and waits for it.
    pub async fn down(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await.context("stopping nats-server")?;
        }
        Ok(())
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.store);
    }
}
