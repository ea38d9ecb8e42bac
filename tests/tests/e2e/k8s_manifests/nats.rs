//! The NATS StatefulSet of the manifests: its configuration file, the
//! cluster the services' settings must name, and `nats-server -t` on it.

use std::process::Command;

use gad_e2e::services::workspace_root;
use gad_shared::topology::server_urls;
use serde_json::Value;

use super::consistency::{Containers, resolve_port};
use super::model::{Doc, Manifests};
use super::settings::Loaded;

/// The NATS StatefulSet (the one running `nats-server`).
fn statefulset(m: &Manifests) -> Option<&Doc> {
    m.of_kind("StatefulSet").find(|d| {
        d.containers()
            .any(|c| c["image"].as_str().is_some_and(|i| i.starts_with("nats:")))
    })
}

/// `nats.<namespace>.svc.cluster.local:<monitor port>`: KEDA runs in another
/// namespace and prefixes the consumer leader's server name (`nats-1.`).
pub fn monitoring_endpoint(m: &Manifests) -> Option<String> {
    let sts = statefulset(m)?;
    let monitor = resolve_port(sts.containers().next()?, &Value::from("monitor"))?;
    let svc = sts.value["spec"]["serviceName"].as_str()?;
    Some(format!("{svc}.{}.svc.cluster.local:{monitor}", sts.namespace()))
}

/// The StatefulSet and its configuration file (from the ConfigMap its
/// `config` volume mounts).
pub fn conf(m: &Manifests) -> Option<(&Doc, String)> {
    let sts = statefulset(m)?;
    let volumes = sts.pod_spec()?["volumes"].as_array()?;
    let cm = volumes.iter().find_map(|v| v["configMap"]["name"].as_str())?;
    let conf = m.get("ConfigMap", cm)?.value["data"]["nats.conf"].as_str()?;
    Some((sts, conf.to_string()))
}

/// `key: value` of a NATS configuration line (first match, comments skipped).
pub fn conf_value<'a>(conf: &'a str, key: &str) -> Option<&'a str> {
    conf.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(key)?.trim_start().strip_prefix(':'))
        .map(str::trim)
}

/// Seconds of `30s`, `2m`, `1h`.
pub fn duration_secs(text: &str) -> f64 {
    let (n, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: f64 = n.parse().unwrap_or(0.0);
    match unit {
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => n,
    }
}

/// The cluster the settings point at is the StatefulSet: every pod's client
/// URL, stream replicas equal to its nodes, routes to every pod, and
/// `sync_interval: always`.
pub fn cluster(m: &Manifests, loaded: &Containers) -> Vec<String> {
    let mut out = Vec::new();
    let Some((sts, conf)) = conf(m) else {
        return vec!["no NATS StatefulSet with a nats.conf ConfigMap".into()];
    };
    let Some(c) = sts.containers().next() else {
        return vec![format!("{}: no container", sts.id())];
    };
    let nodes = sts.value["spec"]["replicas"].as_u64().unwrap_or(1);
    let svc = sts.value["spec"]["serviceName"].as_str().unwrap_or_default();
    let port = |name: &str| resolve_port(c, &Value::from(name)).unwrap_or(0);
    let hosts: Vec<String> = (0..nodes).map(|i| format!("{}-{i}.{svc}", sts.name())).collect();
    let mut want: Vec<String> = hosts.iter().map(|h| format!("nats://{h}:{}", port("client"))).collect();
    want.sort();
    for (doc, _, s) in loaded {
        let nats = match s {
            Loaded::Ingress(s) => &s.nats,
            Loaded::Workers(s) | Loaded::Operator(s) => &s.nats,
            Loaded::Broadcaster(s) => &s.nats,
        };
        let mut urls: Vec<&str> = server_urls(&nats.url);
        urls.sort();
        if urls != want {
            out.push(format!("{}: nats.url {urls:?} is not every node {want:?}", doc.id()));
        }
        if nats.replicas as u64 != nodes {
            out.push(format!(
                "{}: nats.replicas {} on a cluster of {nodes}",
                doc.id(),
                nats.replicas
            ));
        }
    }
    let flat: String = conf.split_whitespace().collect::<Vec<_>>().join(" ");
    if !flat.contains("sync_interval: always") {
        out.push(format!("{}: nats.conf lacks sync_interval: always", sts.id()));
    }
    for h in &hosts {
        if !flat.contains(&format!("nats://{h}:{}", port("cluster"))) {
            out.push(format!("{}: nats.conf has no route to {h}", sts.id()));
        }
    }
    for (key, name) in [("listen", "client"), ("http", "monitor")] {
        let bound = conf_value(&conf, key).and_then(|v| v.rsplit(':').next()?.parse::<u64>().ok());
        if bound != Some(port(name)) {
            out.push(format!(
                "{}: nats.conf {key} {bound:?} is not container port {name}",
                sts.id()
            ));
        }
    }
    out
}

/// `nats-server -t` (parse and check, start nothing) on `conf`, with the
/// variables the pod gets from the downward API. The binary is the one
/// `deploy/services.sh up` installs, as for the tests' own servers.
pub fn server_accepts(conf: &str) -> anyhow::Result<()> {
    let local = workspace_root().join(".local/venv/bin/nats-server");
    let binary = if local.is_file() { local } else { "nats-server".into() };
    let file = std::env::temp_dir().join(format!("gad-k8s-nats-{:016x}.conf", rand::random::<u64>()));
    std::fs::write(&file, conf)?;
    let out = Command::new(&binary)
        .arg("-c")
        .arg(&file)
        .arg("-t")
        .env("POD_NAME", "nats-0")
        .output();
    std::fs::remove_file(&file)?;
    let out = out.map_err(|e| anyhow::anyhow!("running {}: {e}", binary.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "nats-server -t: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
