//! The services' own binaries, for tests that run them as OS processes so
//! they can be killed. Cargo hands a test only its own package's binaries
//! (`CARGO_BIN_EXE_*`), so these are found in the target directory the test
//! itself was built into, and built there first when missing or older than
//! the sources (a `cargo nextest run -p gad-e2e` does not build them).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::{Context, bail};

use crate::services::workspace_root;

/// The path of binary `bin` of package `package`, built if needed.
pub fn binary(package: &str, bin: &str) -> anyhow::Result<PathBuf> {
    // One build at a time within a test process; cargo locks across processes.
    static BUILDING: Mutex<()> = Mutex::new(());
    let _guard = BUILDING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = profile_dir()?;
    let path = dir.join(bin);
    if !is_fresh(&path)? {
        build(package, bin, &dir)?;
    }
    anyhow::ensure!(path.is_file(), "{} missing after the build", path.display());
    Ok(path)
}

/// `target/<profile>`: the test executable lives in its `deps/`.
fn profile_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test executable")?;
    let deps = exe.parent().context("test executable without a directory")?;
    let dir = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().context("deps/ without a parent")?
    } else {
        deps
    };
    Ok(dir.to_path_buf())
}

fn is_fresh(binary: &Path) -> anyhow::Result<bool> {
    let Ok(built) = std::fs::metadata(binary).and_then(|m| m.modified()) else {
        return Ok(false);
    };
    let root = workspace_root();
    let mut newest = SystemTime::UNIX_EPOCH;
    for dir in ["shared", "workers", "ingress", "broadcaster", "migrations"] {
        newest = newest.max(newest_under(&root.join(dir))?);
    }
    for file in ["Cargo.toml", "Cargo.lock"] {
        if let Ok(m) = std::fs::metadata(root.join(file)).and_then(|m| m.modified()) {
            newest = newest.max(m);
        }
    }
    Ok(built >= newest)
}

fn newest_under(dir: &Path) -> anyhow::Result<SystemTime> {
    let mut newest = SystemTime::UNIX_EPOCH;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(newest);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let meta = entry.metadata()?;
        if meta.is_dir() {
            newest = newest.max(newest_under(&path)?);
        } else if let Ok(m) = meta.modified() {
            newest = newest.max(m);
        }
    }
    Ok(newest)
}

fn build(package: &str, bin: &str, profile_dir: &Path) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command
        .current_dir(workspace_root())
        .args(["build", "--quiet", "-p", package, "--bin", bin]);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        command.arg("--release");
    }
    if let Some(target) = profile_dir.parent() {
        command.env("CARGO_TARGET_DIR", target);
    }
    let status = command
        .status()
        .with_context(|| format!("running cargo build for {bin}"))?;
    if !status.success() {
        bail!("cargo build -p {package} --bin {bin} failed: {status}");
    }
    Ok(())
}
