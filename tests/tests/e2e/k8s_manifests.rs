//! `deploy/k8s/` (issue 9) checked offline, with no cluster:
//!
//! - every document against a schema: core kinds with `kubernetes-validate`
//!   (Kubernetes' OpenAPI, strict: an unknown field is an error) for the
//!   oldest and newest Kubernetes we support; KEDA ScaledObjects against the
//!   schema kept in `deploy/k8s/schemas/`; any other kind fails. A broken
//!   copy of the manifests must fail, so the check is known to bite;
//! - every GAD container's environment through the services' own settings
//!   loader, so an unknown key or a bad value fails here, not in a pod;
//! - what ties files together (`consistency`): probe and bind ports, grace
//!   periods above drain times, one Deployment and one ScaledObject per
//!   worker group on its consumer, the NATS cluster the settings name,
//!   disruption budgets, resources, Services, and `nats-server -t` on the
//!   cluster's configuration.
//!
//! Needs `deploy/services.sh up` (kubernetes-validate in `.local/venv`, and
//! the `nats-server` binary there).

mod consistency;
mod model;
mod nats;
mod settings;

use std::path::{Path, PathBuf};
use std::process::Command;

use gad_e2e::services::workspace_root;
use serde_json::Value;

use model::{Manifests, manifest_files};

/// Oldest (native `preStop.sleep`) and newest Kubernetes the manifests are for.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];

fn k8s_dir() -> PathBuf {
    workspace_root().join("deploy/k8s")
}

/// `tests/python/validate_manifests.py` on `files`: (passed, its output).
fn validate(files: &[PathBuf]) -> anyhow::Result<(bool, String)> {
    let python = workspace_root().join(".local/venv/bin/python");
    anyhow::ensure!(
        python.is_file(),
        "{} missing: run deploy/services.sh up (it installs kubernetes-validate)",
        python.display()
    );
    let mut cmd = Command::new(python);
    cmd.arg(workspace_root().join("tests/python/validate_manifests.py"))
        .arg("--keda-schema")
        .arg(k8s_dir().join("schemas/keda-scaledobject.schema.json"));
    for v in KUBERNETES_VERSIONS {
        cmd.args(["-k", v]);
    }
    let out = cmd.args(files).output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

#[test]
fn every_manifest_passes_the_kubernetes_and_keda_schemas() -> anyhow::Result<()> {
    let files = manifest_files(&k8s_dir())?;
    let (ok, text) = validate(&files)?;
    assert!(ok, "validation failed:\n{text}");
    // Every document was checked, not skipped.
    let docs = Manifests::load(&k8s_dir())?.docs.len();
    assert!(
        text.contains(&format!("validated {docs} documents, 0 failed")),
        "{docs} documents expected:\n{text}"
    );
    for kind in [
        "Deployment",
        "StatefulSet",
        "Job",
        "ScaledObject",
        "PodDisruptionBudget",
        "Service",
    ] {
        assert!(text.contains(&format!(" {kind}/")), "no {kind} validated:\n{text}");
    }
    Ok(())
}

/// A copy of the manifests with `edits` (a substring replaced, per file) applied.
fn broken_copy(dir: &Path, edits: &[(&str, &str, &str)]) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    for (file, from, to) in edits {
        let text = std::fs::read_to_string(k8s_dir().join(file))?;
        anyhow::ensure!(text.contains(from), "{file} has no {from:?}");
        let path = dir.join(file);
        std::fs::write(&path, text.replacen(from, to, 1))?;
        files.push(path);
    }
    Ok(files)
}

#[test]
fn a_broken_manifest_fails_validation() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("gad-k8s-broken-{:016x}", rand::random::<u64>()));
    let files = broken_copy(
        &dir,
        &[
            // A misspelt field: strict validation refuses it.
            (
                "ingress.yaml",
                "terminationGracePeriodSeconds:",
                "terminationGracePeriod:",
            ),
            // A string where Kubernetes wants a number.
            ("nats.yaml", "replicas: 3", "replicas: three"),
            // A ScaledObject without the consumer it scales on.
            ("autoscaling.yaml", "consumer: geo\n", "\n"),
        ],
    )?;
    let (ok, text) = validate(&files)?;
    std::fs::remove_dir_all(&dir)?;
    assert!(!ok, "broken manifests passed:\n{text}");
    for broken in [
        "Deployment/gad-ingress",
        "StatefulSet/nats",
        "ScaledObject/gad-workers-geo: spec/triggers/0/metadata: 'consumer' is a required property",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with("error ") && l.contains(broken)),
            "no error for {broken}:\n{text}"
        );
    }
    assert!(text.contains("ok "), "the intact documents still pass:\n{text}");
    Ok(())
}

#[test]
fn the_kustomization_lists_every_manifest() -> anyhow::Result<()> {
    let text = std::fs::read_to_string(k8s_dir().join("kustomization.yaml"))?;
    let k: Value = serde_yaml_ng::from_str(&text)?;
    let mut listed: Vec<String> = k["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str().map(str::to_string))
        .collect();
    listed.sort();
    let mut files: Vec<String> = manifest_files(&k8s_dir())?
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
        .collect();
    files.sort();
    assert_eq!(listed, files);
    Ok(())
}

#[test]
fn every_container_environment_loads_with_the_services_own_settings() -> anyhow::Result<()> {
    let m = Manifests::load(&k8s_dir())?;
    let loaded = settings::all(&m)?;
    let mut commands: Vec<_> = loaded.iter().filter_map(|(_, c, _)| c["command"][0].as_str()).collect();
    commands.sort();
    commands.dedup();
    assert_eq!(commands, ["gad", "gad-broadcaster", "gad-ingress", "gad-workers"]);
    Ok(())
}

/// A misspelt key, or a value of the wrong type, stops the load as it would
/// stop the process, naming the key.
#[test]
fn a_bad_setting_in_a_config_map_fails_to_load() -> anyhow::Result<()> {
    for (key, value, named) in [
        ("GAD_WORKERS__DEFAULT_GROUP__CONCURENCY", "8", "concurency"),
        ("GAD_WORKERS__SHUTDOWN_GRACE", "soon", "SHUTDOWN_GRACE"),
    ] {
        let mut m = Manifests::load(&k8s_dir())?;
        let data = m
            .get_mut("ConfigMap", "gad-workers")
            .and_then(|v| v["data"].as_object_mut())
            .ok_or_else(|| anyhow::anyhow!("no ConfigMap gad-workers"))?;
        data.insert(key.into(), value.into());
        let Err(e) = settings::all(&m) else {
            anyhow::bail!("{key}={value} loaded");
        };
        let e = format!("{e:#}");
        assert!(e.contains(named) && e.contains("GAD_"), "{key}: {e}");
    }
    Ok(())
}

/// Every key of the README's configuration table is set, or shown commented
/// out, somewhere in the manifests: nothing documented is left unconfigurable.
#[test]
fn every_documented_setting_is_in_the_manifests() -> anyhow::Result<()> {
    let readme = std::fs::read_to_string(workspace_root().join("README.md"))?;
    let mentioned = Manifests::mentioned_keys(&k8s_dir())?;
    let documented = readme_keys(&readme);
    assert!(documented.len() > 80, "README table not found: {documented:?}");
    let missing: Vec<_> = documented
        .iter()
        .map(|k| format!("GAD_{}", k.replace('.', "__").to_ascii_uppercase()))
        .filter(|env| !mentioned.contains(env))
        .collect();
    assert!(missing.is_empty(), "not in deploy/k8s: {missing:?}");
    Ok(())
}

/// The keys of the README's configuration table: a row's first cell is
/// `` `a.b` / `c` ``, where `c` shares `a.`; placeholders (`<name>`) are skipped.
fn readme_keys(readme: &str) -> Vec<String> {
    let table = readme
        .split("## Configuration")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .unwrap_or_default();
    let mut keys = Vec::new();
    for row in table.lines().filter(|l| l.starts_with("| `")) {
        let cell = row.split('|').nth(1).unwrap_or_default();
        let mut section = String::new();
        for key in cell.split('`').skip(1).step_by(2) {
            if key.contains('<') {
                continue;
            }
            let full = if key.contains('.') || section.is_empty() {
                key.to_string()
            } else {
                format!("{section}.{key}")
            };
            section = full.rsplit_once('.').map(|(s, _)| s.to_string()).unwrap_or_default();
            keys.push(full);
        }
    }
    keys
}

#[test]
fn the_manifests_agree_with_each_other_and_with_the_settings() -> anyhow::Result<()> {
    let m = Manifests::load(&k8s_dir())?;
    let loaded = settings::all(&m)?;
    let problems = consistency::problems(&m, &loaded);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

/// The consistency checks catch what an operator would trip over.
#[test]
fn inconsistent_manifests_are_reported() -> anyhow::Result<()> {
    let mut m = Manifests::load(&k8s_dir())?;
    let set = |m: &mut Manifests, kind: &str, name: &str, pointer: &str, value: Value| -> anyhow::Result<()> {
        let target = m
            .get_mut(kind, name)
            .and_then(|v| v.pointer_mut(pointer))
            .ok_or_else(|| anyhow::anyhow!("{kind}/{name} has no {pointer}"))?;
        *target = value;
        Ok(())
    };
    set(
        &mut m,
        "Deployment",
        "gad-ingress",
        "/spec/template/spec/terminationGracePeriodSeconds",
        20.into(),
    )?;
    set(
        &mut m,
        "Deployment",
        "gad-broadcaster",
        "/spec/template/spec/containers/0/readinessProbe/httpGet/port",
        "htp".into(),
    )?;
    set(
        &mut m,
        "ScaledObject",
        "gad-workers-import",
        "/spec/scaleTargetRef/name",
        "gad-workers-imports".into(),
    )?;
    set(&mut m, "StatefulSet", "nats", "/spec/replicas", 5.into())?;
    let loaded = settings::all(&m)?;
    let problems = consistency::problems(&m, &loaded).join("\n");
    for expected in [
        "Deployment/gad-ingress (ingress.yaml): terminationGracePeriodSeconds 20 is not above preStop 5 s + drain 25s",
        "Deployment/gad-broadcaster (broadcaster.yaml): readinessProbe port \"htp\" is no container port",
        "Deployment/gad-workers-import (workers-import.yaml): targeted by 0 ScaledObjects",
        "ScaledObject/gad-workers-import (autoscaling.yaml): targets gad-workers-imports",
        "nats.replicas 3 on a cluster of 5",
        "nats.conf has no route to nats-4.nats",
    ] {
        assert!(problems.contains(expected), "missing {expected:?} in:\n{problems}");
    }
    Ok(())
}

#[test]
fn the_nats_cluster_configuration_passes_nats_server() -> anyhow::Result<()> {
    let m = Manifests::load(&k8s_dir())?;
    let (_, conf) = nats::conf(&m).ok_or_else(|| anyhow::anyhow!("no NATS configuration"))?;
    nats::server_accepts(&conf)?;
    // And refuses a broken one, so the check above means something.
    let broken = conf.replace("sync_interval: always", "sync_interval: sometimes");
    assert!(
        nats::server_accepts(&broken).is_err(),
        "nats-server -t accepted {broken}"
    );
    Ok(())
}
