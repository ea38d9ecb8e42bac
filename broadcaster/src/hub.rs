//! Who is subscribed to what on this node, the node's recent history, and
//! fan-out. Delivery only ever `try_send`s into a connection's bounded queue:
//! a broadcast never waits on a socket, and a connection that cannot keep up
//! is closed (4000) instead.
//!
//! Appending an event to the history and delivering it happen under one
//! lock, and so does a resume's last step (its final read of the history and
//! its subscription): an event is either replayed or delivered live, never
//! both, never neither.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use axum::extract::ws::Utf8Bytes;

use crate::history::{History, Limits, StoredEvent};
pub use crate::queue::ConnHandle;

pub type ConnId = u64;

/// Why a connection was refused (1013).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OverCapacity {
    #[error("the node is at its connection limit")]
    Node,
    #[error("the usuario is at its connection limit")]
    User,
}

#[derive(Debug, Clone, Copy)]
pub struct Capacity {
    pub per_node: usize,
    pub per_user: usize,
}

struct Conn {
    handle: ConnHandle,
    topics: Vec<String>,
}

struct State {
    conns: HashMap<ConnId, Conn>,
    per_user: HashMap<i64, usize>,
    /// Subscribers of each topic, each with the sequence above which it gets
    /// that topic's events (what it already has, through a resume or from
    /// before it subscribed, is not sent again).
    topics: HashMap<String, HashMap<ConnId, u64>>,
    history: History,
}

/// One step of a resume, decided under the hub's lock.
pub enum ReplayStep {
    /// These frames (oldest first), then ask again after `cursor`.
    Frames { frames: Vec<Utf8Bytes>, cursor: u64 },
    /// The history lacks events after `cursor` up to `upto`: read them from the stream.
    Missing { upto: u64 },
    /// Caught up; the connection now gets the topic live. `head`: the node's newest sequence.
    Done { head: u64 },
}

#[derive(Clone)]
pub struct Hub {
    state: Arc<RwLock<State>>,
    next_id: Arc<AtomicUsize>,
}

impl Hub {
    /// A hub whose history holds every event after stream sequence `start`.
    pub fn new(limits: Limits, start: u64) -> Self {
        Self {
            state: Arc::new(RwLock::new(State {
                conns: HashMap::new(),
                per_user: HashMap::new(),
                topics: HashMap::new(),
                history: History::new(limits, start),
            })),
            next_id: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn len(&self) -> usize {
        self.state.read().map(|s| s.conns.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Node counters for `/ws/stats`.
    pub fn stats(&self) -> serde_json::Value {
        let Ok(s) = self.state.read() else {
            return serde_json::Value::Null;
        };
        let depths: Vec<usize> = s.conns.values().map(|c| c.handle.depth()).collect();
        serde_json::json!({
            "connections": s.conns.len(),
            "users": s.per_user.len(),
            "topics": s.topics.len(),
            "head_seq": s.history.head(),
            "queue_depth": {
                "total": depths.iter().sum::<usize>(),
                "max": depths.iter().max().copied().unwrap_or(0),
            },
            "history": { "events": s.history.len(), "bytes": s.history.bytes() },
        })
    }

    pub fn head(&self) -> u64 {
        self.state.read().map(|s| s.history.head()).unwrap_or(0)
    }

    /// Registers a connection unless the node or its usuario is full.
    pub fn try_add(&self, handle: ConnHandle, capacity: Capacity) -> Result<ConnId, OverCapacity> {
        let mut s = self.state.write().map_err(|_| OverCapacity::Node)?;
        if s.conns.len() >= capacity.per_node {
            return Err(OverCapacity::Node);
        }
        let user = handle.user_id;
        let mine = s.per_user.entry(user).or_default();
        if *mine >= capacity.per_user {
            return Err(OverCapacity::User);
        }
        *mine += 1;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) as ConnId;
        s.conns.insert(
            id,
            Conn {
                handle,
                topics: Vec::new(),
            },
        );
        Ok(id)
    }

    pub fn remove(&self, id: ConnId) {
        let Ok(mut s) = self.state.write() else { return };
        let Some(conn) = s.conns.remove(&id) else { return };
        if let Some(n) = s.per_user.get_mut(&conn.handle.user_id) {
            *n -= 1;
            if *n == 0 {
                s.per_user.remove(&conn.handle.user_id);
            }
        }
        for topic in &conn.topics {
            unlink(&mut s.topics, id, topic);
        }
    }

    /// Subscribes from now on; returns the node's head (the client's resume cursor).
    pub fn subscribe(&self, id: ConnId, topic: &str) -> u64 {
        let Ok(mut s) = self.state.write() else { return 0 };
        let head = s.history.head();
        link(&mut s, id, topic, head);
        head
    }

    pub fn unsubscribe(&self, id: ConnId, topic: &str) {
        let Ok(mut s) = self.state.write() else { return };
        if let Some(conn) = s.conns.get_mut(&id) {
            conn.topics.retain(|t| t != topic);
        }
        unlink(&mut s.topics, id, topic);
    }

    /// The sequence above which connection `id` gets `topic` live, if subscribed.
    pub fn subscribed_after(&self, id: ConnId, topic: &str) -> Option<u64> {
        let s = self.state.read().ok()?;
        s.topics.get(topic)?.get(&id).copied()
    }

    /// The connection's subscriptions: topic → sequence above which it gets them.
    pub fn subscriptions(&self, id: ConnId) -> HashMap<String, u64> {
        let Ok(s) = self.state.read() else {
            return HashMap::new();
        };
        let topics = s.conns.get(&id).map(|c| c.topics.as_slice()).unwrap_or_default();
        topics
            .iter()
            .filter_map(|t| Some((t.clone(), *s.topics.get(t)?.get(&id)?)))
            .collect()
    }

    /// The next step of resuming `topic` for connection `id` from `from`
    /// (the client's `last_seq`), having sent everything up to `cursor`.
    /// With `until`, only events up to it are replayed and the subscription
    /// is left as it is (the topic is live already); without, the connection
    /// is subscribed once it has caught up.
    pub fn replay_step(
        &self,
        id: ConnId,
        topic: &str,
        from: u64,
        cursor: u64,
        until: Option<u64>,
        max: usize,
    ) -> ReplayStep {
        let Ok(mut s) = self.state.write() else {
            return ReplayStep::Done { head: 0 };
        };
        let complete = s.history.complete_after(topic);
        let limit = until.unwrap_or(u64::MAX);
        if cursor < complete && cursor < limit {
            return ReplayStep::Missing {
                upto: complete.min(limit),
            };
        }
        let events = s.history.range(topic, cursor, limit, max);
        if let Some(last) = events.last() {
            let cursor = last.seq;
            let frames = events
                .iter()
                .filter(|e| !delivered_elsewhere(&s.topics, id, topic, e))
                .map(|e| e.frame(topic))
                .collect();
            return ReplayStep::Frames { frames, cursor };
        }
        let head = s.history.head();
        // The connection now has every event of the topic above `from`
        // (replayed, or live from here): what later resumes of other topics
        // must not send again. Nothing at or below the head is published
        // again, so live delivery is the same as from the head; and a client
        // from a replica ahead of this one (`from` above the head) is not
        // sent again what it has.
        link(&mut s, id, topic, until.map_or(from, |live| live.min(from)));
        ReplayStep::Done { head }
    }

    /// Records the newest event and delivers it to every connection
    /// subscribed to any of its topics, once per connection. Returns how many
    /// connections it was queued for.
    pub fn publish(&self, event: Arc<StoredEvent>) -> usize {
        let Ok(mut s) = self.state.write() else { return 0 };
        s.history.append(event.clone());
        let s = &*s;
        // Deduplication is only needed when the event has several topics.
        let mut seen: Option<HashSet<ConnId>> = (event.topics.len() > 1).then(HashSet::new);
        let mut delivered = 0;
        for topic in event.topics.iter() {
            let Some(subs) = s.topics.get(&**topic) else { continue };
            let mut frame: Option<Utf8Bytes> = None;
            for (id, after) in subs {
                if event.seq <= *after || seen.as_mut().is_some_and(|seen| !seen.insert(*id)) {
                    continue;
                }
                let Some(conn) = s.conns.get(id) else { continue };
                let f = frame.get_or_insert_with(|| event.frame(topic)).clone();
                if conn.handle.offer(f) {
                    delivered += 1;
                }
            }
        }
        delivered
    }

    /// Every connection's handle (shutdown closes them one by one).
    pub fn handles(&self) -> Vec<ConnHandle> {
        self.state
            .read()
            .map(|s| s.conns.values().map(|c| c.handle.clone()).collect())
            .unwrap_or_default()
    }

    /// Asks every connection to close with `code`.
    pub fn close_all(&self, code: u16) {
        for handle in self.handles() {
            handle.close(code);
        }
    }
}

fn link(s: &mut State, id: ConnId, topic: &str, after: u64) {
    let Some(conn) = s.conns.get_mut(&id) else { return };
    if !conn.topics.iter().any(|t| t == topic) {
        conn.topics.push(topic.to_string());
    }
    s.topics.entry(topic.to_string()).or_default().insert(id, after);
}

fn unlink(topics: &mut HashMap<String, HashMap<ConnId, u64>>, id: ConnId, topic: &str) {
    if let Some(subs) = topics.get_mut(topic) {
        subs.remove(&id);
        if subs.is_empty() {
            topics.remove(topic);
        }
    }
}

/// Whether connection `id` got (or will get) `event` through a topic other
/// than `topic`: it is subscribed to another of the event's topics from
/// before the event.
fn delivered_elsewhere(
    topics: &HashMap<String, HashMap<ConnId, u64>>,
    id: ConnId,
    topic: &str,
    event: &StoredEvent,
) -> bool {
    event.topics.iter().any(|t| {
        &**t != topic
            && topics
                .get(&**t)
                .and_then(|subs| subs.get(&id))
                .is_some_and(|after| event.seq > *after)
    })
}

#[cfg(test)]
mod tests;
