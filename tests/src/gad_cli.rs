//! The `gad` operator binary as an OS process, configured like a test's
//! workers (a TOML file from its [`Isolation`], nothing from the test's
//! environment), for tests of `gad import`: its exit status, stdout and
//! stderr, and signals sent mid-run.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};

use crate::binaries;
use crate::isolation::Isolation;
use crate::service_process::Config;

/// A configured `gad` and a scratch directory for the files a test feeds it.
pub struct GadCli {
    binary: PathBuf,
    config: PathBuf,
    dir: PathBuf,
}

/// What one run printed and how it ended.
#[derive(Debug)]
pub struct CliOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    /// The summary printed by `--summary-json`.
    pub fn summary(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_str(self.stdout.trim())
            .with_context(|| format!("stdout is not a JSON summary: {}\nstderr: {}", self.stdout, self.stderr))
    }
}

impl GadCli {
    /// Builds `gad` if stale and writes its configuration for `iso`.
    pub async fn new(iso: &Isolation) -> anyhow::Result<Self> {
        let binary = tokio::task::spawn_blocking(|| binaries::binary("gad-workers", "gad")).await??;
        let dir = std::env::temp_dir().join(format!("gad-e2e-cli-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir)?;
        let config = dir.join("gad.toml");
        std::fs::write(&config, Config::workers(iso).render())?;
        Ok(Self { binary, config, dir })
    }

    /// Where the test's input, rejects and checkpoint files go.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `text` to `name` in [`GadCli::dir`]; its path.
    pub fn file(&self, name: &str, text: &str) -> anyhow::Result<PathBuf> {
        let path = self.dir.join(name);
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// Starts `gad <args>`, its output piped.
    pub fn spawn(&self, args: &[&str]) -> anyhow::Result<Child> {
        Command::new(&self.binary)
            .args(args)
            .env_clear()
            .env("GAD_CONFIG", &self.config)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting gad")
    }

    /// Runs `gad <args>` to its end (at most `within`).
    pub async fn run(&self, args: &[&str], within: Duration) -> anyhow::Result<CliOutput> {
        let child = self.spawn(args)?;
        Self::finish(child, within).await
    }

    /// Waits for a started run to end (at most `within`) and collects its output.
    pub async fn finish(child: Child, within: Duration) -> anyhow::Result<CliOutput> {
        let out = tokio::time::timeout(within, child.wait_with_output())
            .await
            .with_context(|| format!("gad still running after {within:?}"))??;
        Ok(CliOutput {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

impl Drop for GadCli {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
