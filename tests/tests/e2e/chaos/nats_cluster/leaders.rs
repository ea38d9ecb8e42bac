//! Who leads a stream or a consumer of the cluster, and moving that
//! leadership (JetStream's leader step-down, asking for a preferred server),
//! so the test can put what it kills where the services are connected.

use std::time::Duration;

use anyhow::{Context, bail};
use async_nats::jetstream;
use serde_json::{Value, json};
use tokio::time::Instant;

/// A stream (`consumer` None) or one of its consumers.
#[derive(Clone, Copy)]
pub struct Asset<'a> {
    pub stream: &'a str,
    pub consumer: Option<&'a str>,
}

impl Asset<'_> {
    fn api(&self, verb: &str) -> String {
        match self.consumer {
            None => format!("STREAM.{verb}.{}", self.stream),
            Some(c) => format!("CONSUMER.{verb}.{}.{c}", self.stream),
        }
    }
}

/// The server name of the asset's current leader, if it has one.
pub async fn leader(js: &jetstream::Context, asset: Asset<'_>) -> anyhow::Result<Option<String>> {
    let info: Value = js.request(asset.api("INFO"), &json!({})).await?;
    if let Some(e) = info.get("error") {
        bail!("{}: {e}", asset.api("INFO"));
    }
    Ok(info["cluster"]["leader"].as_str().map(str::to_string))
}

/// Waits until the asset has a leader (after an election); returns it.
pub async fn wait_leader(js: &jetstream::Context, asset: Asset<'_>, within: Duration) -> anyhow::Result<String> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(name)) = leader(js, asset).await {
            return Ok(name);
        }
        if Instant::now() >= deadline {
            bail!("no leader for {} within {within:?}", asset.api("INFO"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Moves the asset's leadership to server `to`: step-downs asking for it as
/// the preferred server, a few times (an election may still pick another).
pub async fn move_leader(js: &jetstream::Context, asset: Asset<'_>, to: &str) -> anyhow::Result<()> {
    for _ in 0..10 {
        let now = wait_leader(js, asset, Duration::from_secs(10)).await?;
        if now == to {
            return Ok(());
        }
        let answer: Value = js
            .request(
                asset.api("LEADER.STEPDOWN"),
                &json!({ "placement": { "preferred": to } }),
            )
            .await
            .with_context(|| asset.api("LEADER.STEPDOWN"))?;
        if let Some(e) = answer.get("error") {
            bail!("{}: {e}", asset.api("LEADER.STEPDOWN"));
        }
        // The old leader steps down at once; wait for the election's result.
        let deadline = Instant::now() + Duration::from_secs(10);
        while leader(js, asset).await.ok().flatten().as_deref() == Some(now.as_str()) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    bail!("{} did not move to {to}", asset.api("LEADER"))
}
