//! Two broadcaster replicas (OS processes) reading the same `GAD_EVENTS`:
//! every connection gets each event once; when one replica is killed, its
//! clients reconnect to the other and resume with no gap.

use std::time::Duration;

use gad_e2e::board::Board;
use gad_e2e::service_process::{BroadcasterProcess, Config};

use super::support::{WITHIN, numbered, numbers, replay, topics};

const EVENTS: u64 = 400;
const KILL_AFTER: u64 = 150;
const CLIENTS_PER_REPLICA: usize = 4;

/// What one client saw, across its connections, and how many connections it used.
struct Seen {
    numbers: Vec<u64>,
    connections: usize,
}

/// A client on `first`: subscribes to `tasks`, and when its connection
/// drops, connects to `fallback` and resumes from the last sequence it got.
async fn follow(
    first: String,
    fallback: String,
    token: String,
    ready: tokio::sync::oneshot::Sender<()>,
) -> anyhow::Result<Seen> {
    let tasks = topics(&["tasks"]);
    let mut ws = Board::connect(&first, &token).await?;
    let subscribed = ws.subscribe(&tasks).await?;
    let _ = ready.send(());
    let mut last_seq = subscribed["data"]["topics"][0]["seq"].as_u64().unwrap_or(0);
    let mut seen = Seen {
        numbers: Vec::new(),
        connections: 1,
    };
    loop {
        match ws.next_frame(WITHIN).await {
            Ok(f) => {
                let Some(i) = f["data"]["i"].as_u64() else { continue };
                seen.numbers.push(i);
                last_seq = f["seq"].as_u64().unwrap_or(last_seq);
                if i == EVENTS - 1 {
                    ws.close().await;
                    return Ok(seen);
                }
            }
            Err(e) => {
                anyhow::ensure!(seen.connections == 1, "lost a second connection: {e:#}");
                ws = Board::connect(&fallback, &token).await?;
                seen.connections += 1;
                let (replayed, answer) = replay(&mut ws, "tasks", last_seq).await?;
                anyhow::ensure!(answer["event_type"] == "subscribed", "resume: {answer}");
                seen.numbers.extend(numbers(&replayed));
                if let Some(s) = replayed.iter().filter_map(|f| f["seq"].as_u64()).max() {
                    last_seq = s;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_two_replicas_deliver_once_and_a_killed_ones_clients_resume_on_the_other() -> anyhow::Result<()> {
    let b = Board::start().await?;
    let mut config = Config::broadcaster(&b.isolation);
    config.set("broadcaster", "max_connections_per_user", "50");
    let a = BroadcasterProcess::start(config.clone(), WITHIN).await?;
    let other = BroadcasterProcess::start(config, WITHIN).await?;
    let (mut clients, mut ready) = (Vec::new(), Vec::new());
    for (node, fallback) in [(a.ws(), other.ws()), (other.ws(), a.ws())] {
        for _ in 0..CLIENTS_PER_REPLICA {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let c = tokio::spawn(follow(node.clone(), fallback.clone(), b.supervisor.token.clone(), tx));
            clients.push((node == a.ws(), c));
            ready.push(rx);
        }
    }
    // Every client subscribed before the first event.
    for r in ready {
        tokio::time::timeout(WITHIN, r).await??;
    }

    let tasks = topics(&["tasks"]);
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    for i in 0..EVENTS {
        tick.tick().await;
        b.publish("task_updated", &tasks, numbered(i, 0)).await?;
        if i == KILL_AFTER {
            a.signal("KILL").await?;
        }
    }

    for (on_killed, c) in clients {
        let seen = tokio::time::timeout(Duration::from_secs(30), c).await???;
        assert_eq!(
            seen.numbers,
            (0..EVENTS).collect::<Vec<_>>(),
            "each event exactly once, in order (client on the {} replica)",
            if on_killed { "killed" } else { "surviving" }
        );
        assert_eq!(seen.connections, if on_killed { 2 } else { 1 });
    }
    drop(a);
    drop(other);
    b.stop().await
}
