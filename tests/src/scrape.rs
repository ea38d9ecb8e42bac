//! A test's own Prometheus recorder and reading what it exports. nextest
//! runs each test in a process of its own, so the recorder sees only the
//! services that test starts in-process.

use std::net::SocketAddr;

use crate::app::unused_port;

pub struct Recorder {
    addr: SocketAddr,
    client: reqwest::Client,
}

impl Recorder {
    /// Installs this process' recorder (`init_metrics`, as the binaries do)
    /// on a free port.
    pub fn install() -> anyhow::Result<Self> {
        let addr = SocketAddr::from(([127, 0, 0, 1], unused_port()?));
        gad_shared::telemetry::init_metrics(addr)?;
        Ok(Self {
            addr,
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()?,
        })
    }

    /// The Prometheus text served now.
    pub async fn scrape(&self) -> anyhow::Result<String> {
        let url = format!("http://{}/metrics", self.addr);
        Ok(self.client.get(url).send().await?.error_for_status()?.text().await?)
    }
}

/// The value of the first series of `name` whose label text contains each
/// of `labels` (`kind="geo.nearest"`; none for an unlabelled series).
pub fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && (l[name.len()..].starts_with('{') || l[name.len()..].starts_with(' ')))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}
