//! A client that stops reading is closed with 4000 and loses nothing (it
//! resumes), while 50 others keep receiving in time.

use std::time::Duration;

use gad_e2e::WsClient;
use gad_e2e::board::{self, Board};
use serde_json::Value;

use super::support::{WITHIN, now_us, numbered, numbers, replay, topics};

const FAST_CLIENTS: usize = 50;
const EVENTS: u64 = 600;
/// 50 events/s: 2,500 frames/s to the fast clients. The node and all 51
/// clients run in this (debug) process on 2 cores shared with whatever else
/// runs: at 5,000 frames/s with builds alongside, CPU starvation alone put
/// p99 above 100 ms. The node's own ceiling is what `bench_fanout` measures.
const EVERY: Duration = Duration::from_millis(20);
const PAD: usize = 100;

/// Reads event frames until the last event; returns each one's number and
/// publish→receive latency in microseconds, and the connection, still open
/// (the node's connection count then tells when the slow one is gone).
async fn read_all(mut ws: WsClient) -> anyhow::Result<(Vec<(u64, u64)>, WsClient)> {
    let mut got = Vec::with_capacity(EVENTS as usize);
    loop {
        // Typed and partial: the clients share the test's 2 cores with the node.
        let text = ws.next_text(WITHIN).await?;
        let Ok(Probe {
            data: Some(Numbered { i, sent_us }),
        }) = serde_json::from_str::<Probe>(&text)
        else {
            continue;
        };
        got.push((i, now_us().saturating_sub(sent_us)));
        if i == EVENTS - 1 {
            return Ok((got, ws));
        }
    }
}

#[derive(serde::Deserialize)]
struct Probe {
    data: Option<Numbered>,
}

#[derive(serde::Deserialize)]
struct Numbered {
    i: u64,
    sent_us: u64,
}

async fn connections(stats_url: &str, token: &str) -> anyhow::Result<u64> {
    let r: Value = reqwest::Client::new()
        .get(stats_url)
        .bearer_auth(token)
        .timeout(Duration::from_secs(2))
        .send()
        .await?
        .json()
        .await?;
    r["connections"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("/ws/stats: {r}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_slow_consumer_is_closed_4000_and_resumes_while_50_others_keep_up() -> anyhow::Result<()> {
    let mut b = Board::start().await?;
    let mut section = board::section();
    section.write_deadline = Duration::from_secs(1);
    // Without it the kernel would buffer megabytes for the slow client first.
    section.socket_send_buffer = Some(32 * 1024);
    section.max_connections_per_user = 100;
    let (ws, _) = b.broadcaster(section).await?;
    let stats = format!("{}/ws/stats", ws.replacen("ws://", "http://", 1));
    let tasks = topics(&["tasks"]);
    let token = b.supervisor.token.clone();

    let mut readers = Vec::new();
    for _ in 0..FAST_CLIENTS {
        let mut c = Board::connect(&ws, &token).await?;
        c.subscribe(&tasks).await?;
        readers.push(tokio::spawn(read_all(c)));
    }
    // A receive buffer of a few KiB: it stops reading, and soon the server's writes stall.
    let mut slow = WsClient::connect_with_receive_buffer(&format!("{ws}/ws/connect?token={token}"), 4096).await?;
    let subscribed = slow.subscribe(&tasks).await?;
    let start_seq = subscribed["data"]["topics"][0]["seq"].as_u64().unwrap_or(0);
    // Reads again as soon as the server has let go of it, while the server
    // still tries to hand it the close frame behind what it had sent.
    let slow = {
        let (stats, admin) = (stats.clone(), b.admin.token.clone());
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while connections(&stats, &admin).await? > FAST_CLIENTS as u64 {
                anyhow::ensure!(
                    tokio::time::Instant::now() < deadline,
                    "the slow consumer was never closed"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            slow.read_until_close(WITHIN).await
        })
    };

    let mut acks = Vec::new();
    let mut tick = tokio::time::interval(EVERY);
    for i in 0..EVENTS {
        tick.tick().await;
        acks.push(b.publish_async("task_updated", &tasks, numbered(i, PAD)).await?);
        if acks.len() >= 256 {
            for a in acks.drain(..) {
                a.await?;
            }
        }
    }
    for a in acks.drain(..) {
        a.await?;
    }

    let mut latencies = Vec::new();
    let mut fast = Vec::new();
    for r in readers {
        let (seen, ws) = r.await??;
        let order: Vec<u64> = seen.iter().map(|(i, _)| *i).collect();
        assert_eq!(
            order,
            (0..EVENTS).collect::<Vec<_>>(),
            "a fast client missed or reordered events"
        );
        latencies.extend(seen.into_iter().map(|(_, l)| l));
        fast.push(ws);
    }
    let (before, code) = slow.await??;
    assert_eq!(code, Some(4000), "slow consumer close code");
    let mut got = numbers(&before);
    let last_seq = before
        .iter()
        .filter_map(|f| f["seq"].as_u64())
        .max()
        .unwrap_or(start_seq);
    assert!(got.len() < EVENTS as usize, "it was closed before the end");

    // It comes back and resumes from its last sequence: the rest, in order, none missing.
    let mut back = Board::connect(&ws, &token).await?;
    let (replayed, answer) = replay(&mut back, "tasks", last_seq).await?;
    assert_eq!(answer["event_type"], "subscribed", "{answer}");
    got.extend(numbers(&replayed));
    back.close().await;
    assert_eq!(got, (0..EVENTS).collect::<Vec<_>>(), "every event once, in order");

    for ws in fast {
        ws.close().await;
    }
    latencies.sort_unstable();
    let p99 = latencies[latencies.len() * 99 / 100];
    eprintln!(
        "slow consumer: {} deliveries to fast clients, p50 {} us, p99 {} us; slow one had {} before 4000",
        latencies.len(),
        latencies[latencies.len() / 2],
        p99,
        before.len()
    );
    assert!(p99 <= 50_000, "p99 publish→receive {p99} us");
    b.stop().await
}
