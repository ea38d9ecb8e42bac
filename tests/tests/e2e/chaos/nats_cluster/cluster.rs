//! Three `nats-server` processes on loopback forming one JetStream cluster,
//! configured as `deploy/k8s/nats.yaml` configures the production one
//! (`sync_interval: always`: a node acknowledges only after fsync). Each node
//! has its own store under one temporary directory; all are killed and the
//! directory removed when the cluster is dropped.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use gad_e2e::unused_port;
use serde_json::Value;
use tokio::process::Child;
use tokio::time::Instant;

struct Node {
    name: String,
    client: u16,
    monitor: u16,
    conf: PathBuf,
    child: Option<Child>,
}

pub struct NatsCluster {
    binary: PathBuf,
    dir: PathBuf,
    nodes: Vec<Node>,
    http: reqwest::Client,
}

impl NatsCluster {
    /// Starts `n` nodes (`n0`, `n1`, …) and waits until JetStream answers
    /// (a meta leader is elected).
    pub async fn start(n: usize) -> anyhow::Result<Self> {
        let binary = gad_e2e::nats_server::binary();
        let dir = std::env::temp_dir().join(format!("gad-e2e-nats-cluster-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir)?;
        let ports: Vec<(u16, u16, u16)> = (0..n)
            .map(|_| Ok((unused_port()?, unused_port()?, unused_port()?)))
            .collect::<anyhow::Result<_>>()?;
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, route, _)| format!("\"nats://127.0.0.1:{route}\""))
            .collect();
        let mut nodes = Vec::new();
        for (i, (client, route, monitor)) in ports.into_iter().enumerate() {
            let name = format!("n{i}");
            let store = dir.join(&name);
            let conf = dir.join(format!("{name}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "server_name: {name}\nlisten: 127.0.0.1:{client}\nhttp: 127.0.0.1:{monitor}\n\
                     jetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n}}\n\
                     cluster {{\n  name: gad-test\n  listen: 127.0.0.1:{route}\n  routes: [{}]\n}}\n",
                    store.display(),
                    routes.join(", ")
                ),
            )?;
            nodes.push(Node {
                name,
                client,
                monitor,
                conf,
                child: None,
            });
        }
        let mut cluster = Self {
            binary,
            dir,
            nodes,
            http: reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?,
        };
        for i in 0..n {
            cluster.spawn(i)?;
        }
        cluster.wait_jetstream(Duration::from_secs(30)).await?;
        Ok(cluster)
    }

    /// Every node's client URL, comma-separated: the form of `nats.url`.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.client))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn node(&self, name: &str) -> anyhow::Result<usize> {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .with_context(|| format!("no node {name}"))
    }

    fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let node = &mut self.nodes[i];
        anyhow::ensure!(node.child.is_none(), "{} already runs", node.name);
        let args = [std::ffi::OsStr::new("-c"), node.conf.as_os_str()];
        node.child = Some(gad_e2e::nats_server::spawn(&self.binary, args)?);
        Ok(())
    }

    /// Until a JetStream request through every running node is answered.
    async fn wait_jetstream(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            loop {
                let url = format!("nats://127.0.0.1:{}", node.client);
                let ready = async {
                    let js = async_nats::jetstream::new(async_nats::connect(&url).await.ok()?);
                    js.query_account().await.ok()
                };
                if tokio::time::timeout(Duration::from_secs(2), ready)
                    .await
                    .ok()
                    .flatten()
                    .is_some()
                {
                    break;
                }
                if Instant::now() >= deadline {
                    bail!(
                        "JetStream of the cluster not ready through {} within {within:?}",
                        node.name
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// SIGKILL: the node is gone at once, as in a crash or a lost machine.
    pub async fn kill(&mut self, name: &str) -> anyhow::Result<()> {
        let i = self.node(name)?;
        let mut child = self.nodes[i]
            .child
            .take()
            .with_context(|| format!("{name} is not running"))?;
        child.kill().await.with_context(|| format!("killing {name}"))
    }

    /// Starts a killed node again on its ports and store; it catches up from
    /// the others.
    pub async fn restart(&mut self, name: &str) -> anyhow::Result<()> {
        let i = self.node(name)?;
        self.spawn(i)?;
        self.wait_jetstream(Duration::from_secs(30)).await
    }

    /// A node's monitoring endpoint (`/connz`, `/jsz`, …) as JSON.
    pub async fn monitor(&self, name: &str, path: &str) -> anyhow::Result<Value> {
        let port = self.nodes[self.node(name)?].monitor;
        let url = format!("http://127.0.0.1:{port}{path}");
        Ok(self.http.get(&url).send().await?.error_for_status()?.json().await?)
    }

    /// [`Self::node_subscribed_to`], waiting up to `within` for the
    /// subscription to appear (a service subscribes once it has started).
    pub async fn wait_node_subscribed_to(&self, subject: &str, within: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(node) = self.node_subscribed_to(subject).await? {
                return Ok(node);
            }
            if Instant::now() >= deadline {
                bail!("no node has a subscription to {subject} after {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The node whose client connection subscribes to `subject` (how the
    /// test tells where ingress and the workers are connected).
    pub async fn node_subscribed_to(&self, subject: &str) -> anyhow::Result<Option<String>> {
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            let connz = self.monitor(&node.name, "/connz?subs=1").await?;
            let has = connz["connections"].as_array().into_iter().flatten().any(|c| {
                c["subscriptions_list"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|s| s == subject)
            });
            if has {
                return Ok(Some(node.name.clone()));
            }
        }
        Ok(None)
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(child) = node.child.as_mut() {
                let _ = child.start_kill();
            }
        }
        // A killed server may still hold its store for a moment: wait (at
        // most a second) so the directory goes with everything in it.
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        for node in &mut self.nodes {
            while let Some(child) = node.child.as_mut() {
                if !matches!(child.try_wait(), Ok(None)) || std::time::Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
