//! A container's environment read by the services' own settings loader
//! (`gad_shared::settings::load`), exactly as the process would read it at
//! start: an unknown key, a malformed value or a broken start-up rule fails
//! here as it would fail the pod.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, anyhow};
use gad_broadcaster::BroadcasterSettings;
use gad_ingress::IngressSettings;
use gad_workers::WorkersSettings;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::model::{Doc, Manifests};

/// What one GAD container runs, with its settings as loaded.
pub enum Loaded {
    Ingress(Box<IngressSettings>),
    Workers(Box<WorkersSettings>),
    Broadcaster(Box<BroadcasterSettings>),
    /// The `gad` operator binary (it reads the workers' settings).
    Operator(Box<WorkersSettings>),
}

impl Loaded {
    /// The drain time after SIGTERM, and the addresses that must be
    /// container ports, by port name.
    pub fn drain_and_ports(&self) -> (Option<Duration>, Vec<(&'static str, SocketAddr)>) {
        match self {
            Loaded::Ingress(s) => {
                let mut ports = vec![("http", s.ingress.bind)];
                ports.extend(s.ingress.metrics_bind.map(|a| ("metrics", a)));
                (Some(s.ingress.shutdown_grace), ports)
            }
            Loaded::Workers(s) => {
                let mut ports = vec![("health", s.workers.health_bind)];
                ports.extend(s.workers.metrics_bind.map(|a| ("metrics", a)));
                (Some(s.workers.shutdown_grace), ports)
            }
            Loaded::Broadcaster(s) => {
                let mut ports = vec![("http", s.broadcaster.bind)];
                ports.extend(s.broadcaster.metrics_bind.map(|a| ("metrics", a)));
                (Some(s.broadcaster.shutdown_grace), ports)
            }
            Loaded::Operator(_) => (None, Vec::new()),
        }
    }
}

/// Loads `T` from `env` alone, through the real loader. figment's `Jail`
/// swaps the process environment for `env` and restores it afterwards;
/// nextest runs each test in a process of its own, so no other test sees it.
#[expect(
    clippy::result_large_err,
    reason = "figment's Jail takes a closure returning figment's (large) error"
)]
pub fn load<T: DeserializeOwned>(own_section: &str, env: &BTreeMap<String, String>) -> anyhow::Result<T> {
    let mut loaded = None;
    figment::Jail::try_with(|jail| {
        jail.clear_env();
        for (k, v) in env {
            jail.set_env(k, v);
        }
        loaded = Some(gad_shared::settings::load::<T>(own_section).map_err(|e| e.to_string()));
        Ok(())
    })
    .map_err(|e| anyhow!("jail: {e}"))?;
    loaded.context("the jail did not run")?.map_err(|e| anyhow!(e))
}

/// The settings of a GAD container (by its command), checked by the same
/// start-up rules its binary applies; `None` for a container that is not
/// GAD's (NATS).
pub fn load_container(m: &Manifests, doc: &Doc, container: &Value) -> anyhow::Result<Option<Loaded>> {
    let command = container["command"][0].as_str().unwrap_or_default();
    let env = m.container_env(container)?;
    let ctx = || format!("{} container {}", doc.id(), container["name"]);
    let loaded = match command {
        "gad-ingress" => {
            let s: IngressSettings = load("ingress", &env).with_context(ctx)?;
            gad_shared::settings::check_jwt_secret(&s.auth).with_context(ctx)?;
            Loaded::Ingress(Box::new(s))
        }
        "gad-workers" => {
            let s: WorkersSettings = load("workers", &env).with_context(ctx)?;
            s.workers.check().with_context(ctx)?;
            Loaded::Workers(Box::new(s))
        }
        "gad-broadcaster" => {
            let s: BroadcasterSettings = load("broadcaster", &env).with_context(ctx)?;
            s.check().with_context(ctx)?;
            Loaded::Broadcaster(Box::new(s))
        }
        "gad" => Loaded::Operator(Box::new(load("workers", &env).with_context(ctx)?)),
        _ => return Ok(None),
    };
    Ok(Some(loaded))
}

/// Every GAD container of the manifests with its settings.
pub fn all(m: &Manifests) -> anyhow::Result<Vec<(&Doc, &Value, Loaded)>> {
    let mut out = Vec::new();
    for doc in m.workloads() {
        for c in doc.containers() {
            if let Some(loaded) = load_container(m, doc, c)? {
                out.push((doc, c, loaded));
            }
        }
    }
    Ok(out)
}
