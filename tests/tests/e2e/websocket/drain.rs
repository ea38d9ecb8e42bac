//! SIGTERM: the node stops taking connections and closes the ones it has
//! with 1001, spread over `drain_spread` rather than all at once, within
//! the grace period, and exits cleanly.

use std::time::{Duration, Instant};

use gad_e2e::board::Board;
use gad_e2e::service_process::{BroadcasterProcess, Config};

use super::support::WITHIN;

const CONNECTIONS: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_sigterm_closes_connections_with_1001_spread_over_the_drain_span() -> anyhow::Result<()> {
    let b = Board::start().await?;
    let mut config = Config::broadcaster(&b.isolation);
    config.set("broadcaster", "drain_spread", "\"2s\"");
    config.set("broadcaster", "shutdown_grace", "\"4s\"");
    config.set("broadcaster", "max_connections_per_user", "20");
    let mut node = BroadcasterProcess::start(config, WITHIN).await?;
    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        clients.push(Board::connect(&node.ws(), &b.supervisor.token).await?);
    }
    node.signal("TERM").await?;
    let signalled = Instant::now();
    let closes = clients.into_iter().map(|mut c| async move {
        let (_, code) = c.read_until_close(Duration::from_secs(6)).await?;
        anyhow::Ok((code, signalled.elapsed()))
    });
    let closes = futures::future::try_join_all(closes).await?;
    assert!(closes.iter().all(|(code, _)| *code == Some(1001)), "{closes:?}");
    let mut at: Vec<Duration> = closes.iter().map(|(_, t)| *t).collect();
    at.sort();
    let (first, last) = (at[0], at[CONNECTIONS - 1]);
    assert!(last - first >= Duration::from_millis(1200), "closes not spread: {at:?}");
    assert!(
        last <= Duration::from_millis(3000),
        "closes past the drain span: {at:?}"
    );
    let status = node.wait(Duration::from_secs(6)).await?;
    assert!(status.success(), "exit: {status}");
    b.stop().await
}
