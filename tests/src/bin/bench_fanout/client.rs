//! The benchmark's WebSocket clients, one reader task each: they count event
//! frames and keep their publish→receive latency, and answer the server's
//! `ping` so that idle connections stay open.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connect::{ConnectReport, Ws, connect};

/// Every benchmark event carries its publish time in `data` under this
/// name, in µs since the UNIX epoch; clients find it without parsing JSON.
pub const SENT_FIELD: &str = "bench_sent_us";
const SENT_NEEDLE: &str = "\"bench_sent_us\":";
const PING_NEEDLE: &str = "\"event_type\":\"ping\"";

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The publish time in an event frame, `None` for other frames.
fn sent_us(frame: &str) -> Option<u64> {
    let rest = &frame[frame.find(SENT_NEEDLE)? + SENT_NEEDLE.len()..];
    let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// One client's counters, on its own cache line (one writer each, and the
/// publisher reading them all).
#[repr(align(64))]
#[derive(Default)]
struct Slot {
    events: AtomicU64,
    open: AtomicBool,
    latencies_us: Mutex<Vec<u32>>,
}

/// What every client of a fleet reports into.
struct Board {
    slots: Vec<Slot>,
    /// Latencies are kept for events published in [start, end) (µs since the
    /// epoch), whenever they arrive: no bias against the slowest ones.
    window_start_us: AtomicU64,
    window_end_us: AtomicU64,
    frame_bytes: AtomicUsize,
    /// Closes and errors not asked for by the benchmark, by reason.
    closes: Mutex<BTreeMap<String, u64>>,
}

impl Board {
    fn on_event(&self, slot: &Slot, sent: u64, len: usize) {
        slot.events.fetch_add(1, Ordering::Relaxed);
        let in_window =
            sent >= self.window_start_us.load(Ordering::Relaxed) && sent < self.window_end_us.load(Ordering::Relaxed);
        if in_window {
            let us = now_us().saturating_sub(sent).min(u64::from(u32::MAX)) as u32;
            if let Ok(mut l) = slot.latencies_us.lock() {
                l.push(us);
            }
        }
        if self.frame_bytes.load(Ordering::Relaxed) == 0 {
            self.frame_bytes.store(len, Ordering::Relaxed);
        }
    }

    fn closed(&self, reason: String) {
        if let Ok(mut c) = self.closes.lock() {
            *c.entry(reason).or_default() += 1;
        }
    }
}

/// A set of connections served by one reader task each.
pub struct Fleet {
    board: Arc<Board>,
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl Fleet {
    /// Opens one connection per token, `concurrency` handshakes at a time,
    /// each subscribed to `topic` when given. Connections that fail are
    /// counted in the report, not retried forever.
    pub async fn open(
        addr: &str,
        tokens: Vec<String>,
        topic: Option<&str>,
        concurrency: usize,
        read_buffer: usize,
    ) -> (Self, ConnectReport) {
        let fleet = Fleet {
            board: Arc::new(Board {
                slots: (0..tokens.len()).map(|_| Slot::default()).collect(),
                window_start_us: AtomicU64::new(u64::MAX),
                window_end_us: AtomicU64::new(0),
                frame_bytes: AtomicUsize::new(0),
                closes: Mutex::default(),
            }),
            tracker: TaskTracker::new(),
            cancel: CancellationToken::new(),
        };
        let config = WebSocketConfig::default()
            .read_buffer_size(read_buffer)
            .write_buffer_size(0)
            .max_message_size(Some(1 << 20))
            .max_frame_size(Some(1 << 20));
        let started = Instant::now();
        let mut report = ConnectReport::default();
        let mut attempts = futures::stream::iter(tokens.into_iter().enumerate())
            .map(|(i, token)| async move { (i, connect(addr, &token, topic, config).await) })
            .buffer_unordered(concurrency.max(1));
        while let Some((i, result)) = attempts.next().await {
            match result {
                Ok((ws, retries)) => {
                    report.try_later += retries;
                    report.established += 1;
                    fleet.spawn(i, ws);
                }
                Err(e) => *report.failed.entry(format!("{e:#}")).or_default() += 1,
            }
        }
        report.elapsed = started.elapsed();
        (fleet, report)
    }

    fn spawn(&self, i: usize, ws: Ws) {
        self.board.slots[i].open.store(true, Ordering::Relaxed);
        self.tracker
            .spawn(read_loop(ws, i, self.board.clone(), self.cancel.clone()));
    }

    /// Event frames received by every client so far.
    pub fn delivered(&self) -> u64 {
        self.board.slots.iter().map(|s| s.events.load(Ordering::Relaxed)).sum()
    }

    /// The fewest events any open client has received; `None` when none is open.
    pub fn min_open(&self) -> Option<u64> {
        self.board
            .slots
            .iter()
            .filter(|s| s.open.load(Ordering::Relaxed))
            .map(|s| s.events.load(Ordering::Relaxed))
            .min()
    }

    pub fn open_count(&self) -> usize {
        self.board
            .slots
            .iter()
            .filter(|s| s.open.load(Ordering::Relaxed))
            .count()
    }

    /// Events still owed to open clients once `published` events are out.
    pub fn missing(&self, published: u64) -> u64 {
        self.board
            .slots
            .iter()
            .filter(|s| s.open.load(Ordering::Relaxed))
            .map(|s| published.saturating_sub(s.events.load(Ordering::Relaxed)))
            .sum()
    }

    /// Latencies are kept for events published from now on.
    pub fn start_window(&self, from_us: u64) {
        self.board.window_end_us.store(u64::MAX, Ordering::Relaxed);
        self.board.window_start_us.store(from_us, Ordering::Relaxed);
    }

    /// ... and not for events published from `at_us` on.
    pub fn end_window(&self, at_us: u64) {
        self.board.window_end_us.store(at_us, Ordering::Relaxed);
    }

    /// The latencies kept so far (µs), emptied.
    pub fn take_latencies(&self) -> Vec<u32> {
        let mut all = Vec::new();
        for slot in &self.board.slots {
            if let Ok(mut l) = slot.latencies_us.lock() {
                all.append(&mut l);
            }
        }
        all
    }

    /// Size of the first event frame received, bytes.
    pub fn frame_bytes(&self) -> usize {
        self.board.frame_bytes.load(Ordering::Relaxed)
    }

    /// Closes and errors the benchmark did not ask for, e.g. `4000 slow_consumer×3`.
    pub fn closes(&self) -> (u64, String) {
        let Ok(c) = self.board.closes.lock() else {
            return (0, "?".into());
        };
        let n = c.values().sum();
        let text = c.iter().map(|(k, v)| format!("{k}×{v}")).collect::<Vec<_>>().join(", ");
        (n, if text.is_empty() { "none".into() } else { text })
    }

    /// Closes every connection (normal close) and waits for the readers.
    pub async fn close(self, within: Duration) {
        self.cancel.cancel();
        self.tracker.close();
        let _ = tokio::time::timeout(within, self.tracker.wait()).await;
    }
}

async fn read_loop(mut ws: Ws, i: usize, board: Arc<Board>, cancel: CancellationToken) {
    let slot = &board.slots[i];
    let pong = Utf8Bytes::from_static(r#"{"event_type":"pong","data":{}}"#);
    let unasked = loop {
        let msg = tokio::select! {
            biased;
            _ = cancel.cancelled() => break None,
            m = ws.next() => m,
        };
        match msg {
            Some(Ok(Message::Text(text))) => {
                let text = text.as_str();
                if let Some(sent) = sent_us(text) {
                    board.on_event(slot, sent, text.len());
                } else if text.contains(PING_NEEDLE) && ws.send(Message::Text(pong.clone())).await.is_err() {
                    break Some("send error".to_string());
                }
            }
            Some(Ok(Message::Close(f))) => {
                break Some(f.map_or("close without code".into(), |f| {
                    format!("{} {}", u16::from(f.code), f.reason)
                }));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => break Some(format!("read error: {e}")),
            None => break Some("eof".into()),
        }
    };
    slot.open.store(false, Ordering::Relaxed);
    match unasked {
        Some(reason) => board.closed(reason),
        None => {
            // Our close, then the server's answer (or give up: the socket drops).
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                let _ = ws.close(None).await;
                while let Some(Ok(_)) = ws.next().await {}
            })
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_publish_time_is_found_in_event_frames_only() {
        let event = r#"{"event_type":"task_updated","data":{"bench_sent_us":1700000000123456,"pad":"x"},"topic":"tasks","seq":3}"#;
        assert_eq!(sent_us(event), Some(1_700_000_000_123_456));
        assert_eq!(sent_us(r#"{"event_type":"ping","data":{}}"#), None);
    }
}
