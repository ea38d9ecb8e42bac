//! What the board's tests share: reading a resume's replay, numbering events.

use std::time::Duration;

use gad_e2e::WsClient;
use serde_json::{Value, json};

pub const WITHIN: Duration = Duration::from_secs(10);

/// The frames a resume sends, up to and including its `subscribed` (or `error`).
pub async fn replay(ws: &mut WsClient, topic: &str, last_seq: u64) -> anyhow::Result<(Vec<Value>, Value)> {
    ws.resume(topic, last_seq).await?;
    let mut frames = Vec::new();
    loop {
        let f = ws.next_frame(WITHIN).await?;
        match f["event_type"].as_str() {
            Some("subscribed" | "error") => return Ok((frames, f)),
            _ => frames.push(f),
        }
    }
}

/// Data of test event number `i` (`pad` bytes of filler).
pub fn numbered(i: u64, pad: usize) -> Value {
    json!({ "i": i, "sent_us": now_us(), "pad": "x".repeat(pad) })
}

pub fn now_us() -> u64 {
    chrono::Utc::now().timestamp_micros().max(0) as u64
}

/// The numbers (`data.i`) of event frames, in arrival order.
pub fn numbers(frames: &[Value]) -> Vec<u64> {
    frames.iter().filter_map(|f| f["data"]["i"].as_u64()).collect()
}

pub fn seqs(frames: &[Value]) -> Vec<u64> {
    frames.iter().filter_map(|f| f["seq"].as_u64()).collect()
}

pub fn topics(n: &[&str]) -> Vec<String> {
    n.iter().map(|t| t.to_string()).collect()
}
