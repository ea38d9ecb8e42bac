//! The manifests of `deploy/k8s/` as JSON values, and what a container of
//! them would see: its environment, resolved from ConfigMaps and the Secret
//! the way the kubelet resolves it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;

/// One YAML document of one file.
#[derive(Debug, Clone)]
pub struct Doc {
    pub file: String,
    pub value: Value,
}

impl Doc {
    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or_default()
    }
    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or_default()
    }
    pub fn namespace(&self) -> &str {
        self.value["metadata"]["namespace"].as_str().unwrap_or_default()
    }
    /// `Kind/name (file)`, for messages.
    pub fn id(&self) -> String {
        format!("{}/{} ({})", self.kind(), self.name(), self.file)
    }
    /// The pod template's spec of a Deployment, StatefulSet or Job.
    pub fn pod_spec(&self) -> Option<&Value> {
        match self.kind() {
            "Deployment" | "StatefulSet" | "Job" => Some(&self.value["spec"]["template"]["spec"]),
            _ => None,
        }
    }
    pub fn pod_labels(&self) -> Option<&serde_json::Map<String, Value>> {
        self.value["spec"]["template"]["metadata"]["labels"].as_object()
    }
    pub fn containers(&self) -> impl Iterator<Item = &Value> {
        self.pod_spec()
            .and_then(|s| s["containers"].as_array())
            .into_iter()
            .flatten()
    }
}

pub struct Manifests {
    pub docs: Vec<Doc>,
}

/// The manifest files of `dir`: every `*.yaml` but the kustomization.
pub fn manifest_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .filter(|p| p.file_name().is_some_and(|n| n != "kustomization.yaml"))
        .collect();
    files.sort();
    Ok(files)
}

impl Manifests {
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let mut docs = Vec::new();
        for path in manifest_files(dir)? {
            let text = std::fs::read_to_string(&path)?;
            let file = path.file_name().unwrap_or_default().to_string_lossy().to_string();
            for de in serde_yaml_ng::Deserializer::from_str(&text) {
                let value = Value::deserialize(de).with_context(|| format!("parsing {file}"))?;
                // A document of comments only.
                if !value.is_null() {
                    docs.push(Doc {
                        file: file.clone(),
                        value,
                    });
                }
            }
        }
        Ok(Self { docs })
    }

    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Doc> + 'a {
        self.docs.iter().filter(move |d| d.kind() == kind)
    }

    pub fn get(&self, kind: &str, name: &str) -> Option<&Doc> {
        self.docs.iter().find(|d| d.kind() == kind && d.name() == name)
    }

    pub fn get_mut(&mut self, kind: &str, name: &str) -> Option<&mut Value> {
        self.docs
            .iter_mut()
            .find(|d| d.kind() == kind && d.name() == name)
            .map(|d| &mut d.value)
    }

    /// Deployments, StatefulSets and Jobs.
    pub fn workloads(&self) -> impl Iterator<Item = &Doc> {
        self.docs.iter().filter(|d| d.pod_spec().is_some())
    }

    /// A ConfigMap's or Secret's string values (`data` / `stringData`).
    fn values(&self, kind: &str, name: &str) -> anyhow::Result<BTreeMap<String, String>> {
        let doc = self.get(kind, name).with_context(|| format!("no {kind} {name}"))?;
        let field = if kind == "Secret" { "stringData" } else { "data" };
        let map = doc.value[field].as_object().cloned().unwrap_or_default();
        map.into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                other => bail!("{kind} {name}: {k} is not a string: {other}"),
            })
            .collect()
    }

    /// The environment a container starts with: `envFrom` sources in order,
    /// then `env` over them (the kubelet's precedence). Values from the
    /// downward API (`fieldRef`) are left out: no setting reads them.
    pub fn container_env(&self, container: &Value) -> anyhow::Result<BTreeMap<String, String>> {
        let mut env = BTreeMap::new();
        for source in container["envFrom"].as_array().into_iter().flatten() {
            if let Some(name) = source["configMapRef"]["name"].as_str() {
                env.extend(self.values("ConfigMap", name)?);
            } else if let Some(name) = source["secretRef"]["name"].as_str() {
                env.extend(self.values("Secret", name)?);
            } else {
                bail!("unsupported envFrom {source}");
            }
        }
        for var in container["env"].as_array().into_iter().flatten() {
            let name = var["name"].as_str().context("env without name")?.to_string();
            if let Some(v) = var["value"].as_str() {
                env.insert(name, v.to_string());
                continue;
            }
            let from = &var["valueFrom"];
            let (kind, selector) = if from["secretKeyRef"].is_object() {
                ("Secret", &from["secretKeyRef"])
            } else if from["configMapKeyRef"].is_object() {
                ("ConfigMap", &from["configMapKeyRef"])
            } else if from["fieldRef"].is_object() {
                continue;
            } else {
                bail!("{name}: unsupported valueFrom {from}");
            };
            let source = selector["name"].as_str().unwrap_or_default();
            let key = selector["key"].as_str().unwrap_or_default();
            match self.values(kind, source)?.get(key) {
                Some(v) => {
                    env.insert(name, v.clone());
                }
                None if selector["optional"] == Value::Bool(true) => {}
                None => bail!("{name}: {kind} {source} has no key {key}"),
            }
        }
        Ok(env)
    }

    /// Every `GAD_*` name a manifest sets or shows commented out (a key
    /// without a default, `# GAD_X__Y: example`), over all files.
    pub fn mentioned_keys(dir: &Path) -> anyhow::Result<Vec<String>> {
        let mut keys = Vec::new();
        for path in manifest_files(dir)? {
            for line in std::fs::read_to_string(&path)?.lines() {
                let line = line.trim().trim_start_matches(['#', '-', ' ']);
                let line = line.strip_prefix("name: ").unwrap_or(line);
                if let Some((key, _)) = line.split_once(':')
                    && key.starts_with("GAD_")
                    && key
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                {
                    keys.push(key.to_string());
                } else if line.starts_with("GAD_") && !line.contains(' ') {
                    keys.push(line.to_string());
                }
            }
        }
        Ok(keys)
    }
}
