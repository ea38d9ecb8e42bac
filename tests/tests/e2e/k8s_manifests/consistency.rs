//! What a schema cannot see and an operator would: manifests that disagree
//! with each other or with the settings the containers load. Each check
//! returns its problems as sentences; none means consistent.

use gad_shared::job::GROUPS;
use gad_shared::topology::Topology;
use serde_json::Value;

use super::model::{Doc, Manifests};
use super::nats;
use super::settings::Loaded;

pub type Containers<'a> = [(&'a Doc, &'a Value, Loaded)];

/// Every check below, over the manifests and their loaded settings.
pub fn problems(m: &Manifests, loaded: &Containers) -> Vec<String> {
    let mut out = Vec::new();
    out.extend(probes_and_ports(m, loaded));
    out.extend(grace_periods(m, loaded));
    out.extend(worker_groups(m, loaded));
    out.extend(nats::cluster(m, loaded));
    out.extend(disruption_budgets(m));
    out.extend(resources(m));
    out.extend(services(m));
    out.extend(one_off_settings(m, loaded));
    out
}

/// The container port a probe or Service names (by name or number).
pub fn resolve_port(container: &Value, port: &Value) -> Option<u64> {
    let ports = container["ports"].as_array()?;
    match port {
        Value::Number(n) => ports
            .iter()
            .filter_map(|p| p["containerPort"].as_u64())
            .find(|p| Some(*p) == n.as_u64()),
        Value::String(name) => ports
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["containerPort"].as_u64()),
        _ => None,
    }
}

const PROBES: [&str; 3] = ["readinessProbe", "livenessProbe", "startupProbe"];

/// Probes hit a port the container opens; GAD's answer on the addresses its
/// settings bind, which are the container's ports and not loopback.
pub fn probes_and_ports(m: &Manifests, loaded: &Containers) -> Vec<String> {
    let mut out = Vec::new();
    for doc in m.workloads() {
        for c in doc.containers() {
            for probe in PROBES {
                let get = &c[probe]["httpGet"];
                if get.is_object() && resolve_port(c, &get["port"]).is_none() {
                    out.push(format!(
                        "{}: {probe} port {} is no container port",
                        doc.id(),
                        get["port"]
                    ));
                }
            }
        }
    }
    for (doc, c, settings) in loaded {
        let (_, ports) = settings.drain_and_ports();
        for (name, addr) in &ports {
            match resolve_port(c, &Value::from(*name)) {
                Some(p) if p == u64::from(addr.port()) => {}
                other => out.push(format!(
                    "{}: settings bind {name} to {addr}, container port {name} is {other:?}",
                    doc.id()
                )),
            }
            if !addr.ip().is_unspecified() {
                out.push(format!(
                    "{}: {name} binds {addr}: unreachable from outside the pod",
                    doc.id()
                ));
            }
        }
        if let Some((health, _)) = ports.first() {
            for (probe, path) in [("readinessProbe", "/health/ready"), ("livenessProbe", "/health")] {
                let get = &c[probe]["httpGet"];
                if get["path"] != path || resolve_port(c, &get["port"]) != resolve_port(c, &Value::from(*health)) {
                    out.push(format!("{}: {probe} is not GET {path} on port {health}", doc.id()));
                }
            }
        }
    }
    out
}

/// The kubelet kills a pod after `terminationGracePeriodSeconds` (default
/// 30), counted from the preStop hook: the drain must fit after the pause.
pub fn grace_periods(m: &Manifests, loaded: &Containers) -> Vec<String> {
    let mut out = Vec::new();
    let grace_of = |doc: &Doc| {
        doc.pod_spec()
            .and_then(|s| s["terminationGracePeriodSeconds"].as_u64())
            .unwrap_or(30)
    };
    for (doc, c, settings) in loaded {
        let (Some(drain), _) = settings.drain_and_ports() else {
            continue;
        };
        let pause = c["lifecycle"]["preStop"]["sleep"]["seconds"].as_u64().unwrap_or(0);
        let grace = grace_of(doc);
        if grace as f64 <= pause as f64 + drain.as_secs_f64() {
            out.push(format!(
                "{}: terminationGracePeriodSeconds {grace} is not above preStop {pause} s + drain {drain:?}",
                doc.id()
            ));
        }
    }
    if let Some((sts, conf)) = nats::conf(m) {
        let lame_duck = nats::duration_secs(nats::conf_value(&conf, "lame_duck_duration").unwrap_or("2m"));
        let lame_grace = nats::duration_secs(nats::conf_value(&conf, "lame_duck_grace_period").unwrap_or("10s"));
        let grace = grace_of(sts);
        if (grace as f64) <= lame_duck + lame_grace {
            out.push(format!(
                "{}: terminationGracePeriodSeconds {grace} is not above lame duck {lame_duck} s + {lame_grace} s",
                sts.id()
            ));
        }
    }
    out
}

/// Each worker group: one Deployment running that group alone, scaled by
/// one ScaledObject on that group's consumer of the jobs stream, read from
/// the NATS StatefulSet's monitoring port under its headless Service.
pub fn worker_groups(m: &Manifests, loaded: &Containers) -> Vec<String> {
    let mut out = Vec::new();
    let endpoint = nats::monitoring_endpoint(m);
    for group in GROUPS {
        let runs: Vec<_> = loaded
            .iter()
            .filter_map(|(doc, _, s)| match s {
                Loaded::Workers(w) if w.workers.groups.iter().any(|g| g == group) => Some((*doc, w)),
                _ => None,
            })
            .collect();
        let [(deployment, settings)] = runs.as_slice() else {
            out.push(format!("group {group}: run by {} workloads, not one", runs.len()));
            continue;
        };
        if settings.workers.groups.len() != 1 {
            out.push(format!(
                "{}: runs {:?}; one group per Deployment scales on one lag",
                deployment.id(),
                settings.workers.groups
            ));
        }
        if !deployment.value["spec"]["replicas"].is_null() {
            out.push(format!(
                "{}: sets spec.replicas, which every apply would reset under KEDA",
                deployment.id()
            ));
        }
        let scalers: Vec<_> = m
            .of_kind("ScaledObject")
            .filter(|s| s.value["spec"]["scaleTargetRef"]["name"] == deployment.name())
            .collect();
        let [scaler] = scalers.as_slice() else {
            out.push(format!(
                "{}: targeted by {} ScaledObjects, not one",
                deployment.id(),
                scalers.len()
            ));
            continue;
        };
        let kind = &scaler.value["spec"]["scaleTargetRef"]["kind"];
        if !(kind.is_null() || kind == "Deployment") || scaler.namespace() != deployment.namespace() {
            out.push(format!(
                "{}: does not target Deployment {} in its namespace",
                scaler.id(),
                deployment.name()
            ));
        }
        let stream = Topology::new(&settings.nats).jobs_stream();
        let on_lag = scaler.value["spec"]["triggers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| {
                let md = &t["metadata"];
                t["type"] == "nats-jetstream"
                    && md["stream"] == stream.as_str()
                    && md["consumer"] == *group
                    && endpoint
                        .as_deref()
                        .is_some_and(|e| md["natsServerMonitoringEndpoint"] == e)
            });
        if !on_lag {
            out.push(format!(
                "{}: no nats-jetstream trigger on stream {stream}, consumer {group}, endpoint {endpoint:?}",
                scaler.id()
            ));
        }
    }
    for scaler in m.of_kind("ScaledObject") {
        let target = scaler.value["spec"]["scaleTargetRef"]["name"]
            .as_str()
            .unwrap_or_default();
        if m.get("Deployment", target).is_none() {
            out.push(format!("{}: targets {target}, which no manifest defines", scaler.id()));
        }
    }
    out
}

fn selects(selector: &Value, labels: Option<&serde_json::Map<String, Value>>) -> bool {
    let (Some(sel), Some(labels)) = (selector.as_object(), labels) else {
        return false;
    };
    !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Each Deployment and StatefulSet has one budget, which allows a drain:
/// `minAvailable` below the replicas it keeps at least.
pub fn disruption_budgets(m: &Manifests) -> Vec<String> {
    let mut out = Vec::new();
    for doc in m.workloads().filter(|d| d.kind() != "Job") {
        let pdbs: Vec<_> = m
            .of_kind("PodDisruptionBudget")
            .filter(|p| selects(&p.value["spec"]["selector"]["matchLabels"], doc.pod_labels()))
            .collect();
        let [pdb] = pdbs.as_slice() else {
            out.push(format!(
                "{}: covered by {} PodDisruptionBudgets, not one",
                doc.id(),
                pdbs.len()
            ));
            continue;
        };
        let floor = m
            .of_kind("ScaledObject")
            .find(|s| s.value["spec"]["scaleTargetRef"]["name"] == doc.name())
            .map(|s| s.value["spec"]["minReplicaCount"].as_u64().unwrap_or(0))
            .or_else(|| Some(doc.value["spec"]["replicas"].as_u64().unwrap_or(1)))
            .unwrap_or(1);
        if let Some(min) = pdb.value["spec"]["minAvailable"].as_u64()
            && min >= floor
        {
            out.push(format!(
                "{}: minAvailable {min} with {floor} replicas blocks every drain",
                pdb.id()
            ));
        }
    }
    out
}

/// Requests (for scheduling) and limits (for neighbours) on every container.
pub fn resources(m: &Manifests) -> Vec<String> {
    let mut out = Vec::new();
    for doc in m.workloads() {
        for c in doc.containers() {
            for field in ["requests", "limits"] {
                for what in ["cpu", "memory"] {
                    if !c["resources"][field][what].is_string() {
                        out.push(format!("{}: container {} has no {field}.{what}", doc.id(), c["name"]));
                    }
                }
            }
        }
    }
    out
}

/// A Service selects one workload's pods and forwards to ports they open.
pub fn services(m: &Manifests) -> Vec<String> {
    let mut out = Vec::new();
    for svc in m.of_kind("Service") {
        let targets: Vec<_> = m
            .workloads()
            .filter(|d| d.kind() != "Job" && selects(&svc.value["spec"]["selector"], d.pod_labels()))
            .collect();
        let [target] = targets.as_slice() else {
            out.push(format!("{}: selects {} workloads, not one", svc.id(), targets.len()));
            continue;
        };
        for port in svc.value["spec"]["ports"].as_array().into_iter().flatten() {
            let wanted = if port["targetPort"].is_null() {
                &port["port"]
            } else {
                &port["targetPort"]
            };
            if !target.containers().any(|c| resolve_port(c, wanted).is_some()) {
                out.push(format!(
                    "{}: targetPort {wanted} is no port of {}",
                    svc.id(),
                    target.id()
                ));
            }
        }
    }
    out
}

/// Settings that name another manifest's figure: the Telegram limiter's
/// share per broadcaster replica, and migrations left to the Job.
pub fn one_off_settings(m: &Manifests, loaded: &Containers) -> Vec<String> {
    let mut out = Vec::new();
    for (doc, _, s) in loaded {
        match s {
            Loaded::Broadcaster(b) => {
                let replicas = doc.value["spec"]["replicas"].as_u64().unwrap_or(1);
                if u64::from(b.telegram.replicas) != replicas {
                    out.push(format!(
                        "{}: telegram.replicas {} but {replicas} replicas",
                        doc.id(),
                        b.telegram.replicas
                    ));
                }
            }
            Loaded::Workers(w) if w.workers.migrate_on_start => {
                out.push(format!("{}: migrates at start, racing the migration Job", doc.id()));
            }
            _ => {}
        }
    }
    let migrates = m
        .of_kind("Job")
        .flat_map(|j| j.containers())
        .any(|c| c["command"] == serde_json::json!(["gad", "migrate"]));
    if !migrates {
        out.push("no Job runs `gad migrate`".into());
    }
    out
}
