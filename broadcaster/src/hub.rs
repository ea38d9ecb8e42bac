//! Who is subscribed to what on this node, and fan-out. Delivery only ever
//! `try_send`s into a connection's bounded queue: a broadcast never waits on
//! a socket, and a connection that cannot keep up is closed (4000) instead.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::frames::close;

pub type ConnId = u64;

/// The sending side of one connection, held by the hub.
#[derive(Clone)]
pub struct ConnHandle {
    tx: mpsc::Sender<Utf8Bytes>,
    queued_bytes: Arc<AtomicUsize>,
    max_bytes: usize,
    /// Fires to make the connection close; `close_code` says why.
    pub closing: CancellationToken,
    pub close_code: Arc<AtomicU16>,
    pub user_id: i64,
}

impl ConnHandle {
    pub fn new(tx: mpsc::Sender<Utf8Bytes>, max_bytes: usize, user_id: i64) -> (Self, Arc<AtomicUsize>) {
        let queued = Arc::new(AtomicUsize::new(0));
        let handle = Self {
            tx,
            queued_bytes: queued.clone(),
            max_bytes,
            closing: CancellationToken::new(),
            close_code: Arc::new(AtomicU16::new(1000)),
            user_id,
        };
        (handle, queued)
    }

    /// Queues a frame; false (and the connection is being closed as a slow
    /// consumer) when its queue is full by count or by bytes.
    pub fn offer(&self, frame: Utf8Bytes) -> bool {
        let len = frame.len();
        if self.queued_bytes.load(Ordering::Relaxed) + len > self.max_bytes {
            self.close(close::SLOW_CONSUMER);
            return false;
        }
        match self.tx.try_send(frame) {
            Ok(()) => {
                self.queued_bytes.fetch_add(len, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close(close::SLOW_CONSUMER);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    pub fn close(&self, code: u16) {
        if !self.closing.is_cancelled() {
            self.close_code.store(code, Ordering::Relaxed);
            self.closing.cancel();
        }
    }
}

#[derive(Default)]
struct State {
    conns: HashMap<ConnId, ConnHandle>,
    topics: HashMap<String, HashSet<ConnId>>,
}

#[derive(Clone, Default)]
pub struct Hub {
    state: Arc<RwLock<State>>,
    next_id: Arc<AtomicUsize>,
}

impl Hub {
    pub fn len(&self) -> usize {
        self.state.read().map(|s| s.conns.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn topic_count(&self) -> usize {
        self.state.read().map(|s| s.topics.len()).unwrap_or(0)
    }

    pub fn add(&self, handle: ConnHandle) -> ConnId {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) as ConnId;
        if let Ok(mut s) = self.state.write() {
            s.conns.insert(id, handle);
        }
        id
    }

    pub fn remove(&self, id: ConnId) {
        if let Ok(mut s) = self.state.write() {
            s.conns.remove(&id);
            s.topics.retain(|_, subs| {
                subs.remove(&id);
                !subs.is_empty()
            });
        }
    }

    pub fn subscribe(&self, id: ConnId, topic: &str) {
        if let Ok(mut s) = self.state.write() {
            s.topics.entry(topic.to_string()).or_default().insert(id);
        }
    }

    pub fn unsubscribe(&self, id: ConnId, topic: &str) {
        if let Ok(mut s) = self.state.write()
            && let Some(subs) = s.topics.get_mut(topic)
        {
            subs.remove(&id);
            if subs.is_empty() {
                s.topics.remove(topic);
            }
        }
    }

    /// Delivers one event to every connection subscribed to any of `topics`,
    /// once per connection; `render` makes the frame for the matched topic.
    /// Returns how many connections it was queued for.
    pub fn deliver(&self, topics: &[&str], mut render: impl FnMut(&str) -> Utf8Bytes) -> usize {
        let Ok(s) = self.state.read() else { return 0 };
        let mut seen: HashSet<ConnId> = HashSet::new();
        let mut delivered = 0;
        for topic in topics {
            let Some(subs) = s.topics.get(*topic) else { continue };
            let mut frame: Option<Utf8Bytes> = None;
            for id in subs {
                if !seen.insert(*id) {
                    continue;
                }
                let Some(conn) = s.conns.get(id) else { continue };
                let f = frame.get_or_insert_with(|| render(topic)).clone();
                if conn.offer(f) {
                    delivered += 1;
                } else {
                    metrics::counter!("websocket_broadcast_errors_total", "reason" => "slow_consumer").increment(1);
                }
            }
        }
        delivered
    }

    /// Asks every connection to close with `code` (shutdown).
    pub fn close_all(&self, code: u16) {
        if let Ok(s) = self.state.read() {
            for conn in s.conns.values() {
                conn.close(code);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(hub: &Hub, capacity: usize) -> (ConnId, mpsc::Receiver<Utf8Bytes>, ConnHandle) {
        let (tx, rx) = mpsc::channel(capacity);
        let (handle, _) = ConnHandle::new(tx, 1 << 20, 1);
        (hub.add(handle.clone()), rx, handle)
    }

    #[test]
    fn a_connection_on_two_matching_topics_gets_the_event_once() {
        let hub = Hub::default();
        let (a, mut rx_a, _) = conn(&hub, 10);
        let (b, mut rx_b, _) = conn(&hub, 10);
        hub.subscribe(a, "tasks");
        hub.subscribe(a, "tasks.1");
        hub.subscribe(b, "tasks.1");
        assert_eq!(
            hub.deliver(&["tasks", "tasks.1"], |t| Utf8Bytes::from(t.to_string())),
            2
        );
        assert_eq!(rx_a.try_recv().ok().as_ref().map(|f| f.as_str()), Some("tasks"));
        assert!(rx_a.try_recv().is_err());
        assert_eq!(rx_b.try_recv().ok().as_ref().map(|f| f.as_str()), Some("tasks.1"));
    }

    #[test]
    fn a_full_queue_closes_that_connection_as_slow_and_spares_the_others() {
        let hub = Hub::default();
        let (slow, _rx_slow, slow_handle) = conn(&hub, 1);
        let (fast, mut rx_fast, fast_handle) = conn(&hub, 10);
        hub.subscribe(slow, "alerts");
        hub.subscribe(fast, "alerts");
        hub.deliver(&["alerts"], |_| Utf8Bytes::from_static("1"));
        hub.deliver(&["alerts"], |_| Utf8Bytes::from_static("2"));
        assert!(slow_handle.closing.is_cancelled());
        assert_eq!(slow_handle.close_code.load(Ordering::Relaxed), close::SLOW_CONSUMER);
        assert!(!fast_handle.closing.is_cancelled());
        assert_eq!(rx_fast.try_recv().ok().as_ref().map(|f| f.as_str()), Some("1"));
        assert_eq!(rx_fast.try_recv().ok().as_ref().map(|f| f.as_str()), Some("2"));
    }

    #[test]
    fn removing_a_connection_drops_its_subscriptions() {
        let hub = Hub::default();
        let (a, _rx, _) = conn(&hub, 10);
        hub.subscribe(a, "jobs.x");
        assert_eq!(hub.topic_count(), 1);
        hub.remove(a);
        assert_eq!(hub.topic_count(), 0);
        assert_eq!(hub.deliver(&["jobs.x"], |_| Utf8Bytes::from_static("x")), 0);
    }
}
