//! The recent past `resume` is served from: the newest events of every topic,
//! in memory, bounded three ways (events per topic, age, bytes in all). Each
//! event is stored once and shared by the rings of its topics.
//!
//! The history also knows what it does *not* hold: for each topic, the
//! sequence after which it has every event of that topic
//! ([`History::complete_after`]). A resume from further back reads the
//! stream for the missing part.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use gad_shared::envelope::EventEnvelope;
use serde::Serialize;
use uuid::Uuid;

/// One event as this node delivers it.
#[derive(Debug)]
pub struct StoredEvent {
    pub seq: u64,
    pub message_id: Uuid,
    /// The frame's JSON up to, not including, its `topic` and `seq` fields:
    /// the part every topic shares, serialized once.
    shared: Box<str>,
    pub topics: Box<[Box<str>]>,
    received: Instant,
}

/// The fields of a server frame (§8) that do not depend on the topic, in the
/// order `frames::ServerFrame` writes them.
#[derive(Serialize)]
struct SharedPart<'a> {
    event_type: &'a str,
    data: &'a serde_json::Value,
    #[serde(with = "gad_shared::time::millis")]
    timestamp: chrono::DateTime<chrono::Utc>,
    message_id: Uuid,
}

impl StoredEvent {
    pub fn new(seq: u64, event: &EventEnvelope, topics: &[&str], received: Instant) -> Self {
        let shared = serde_json::to_string(&SharedPart {
            event_type: &event.event_type,
            data: &event.data,
            timestamp: event.timestamp,
            message_id: event.event_id,
        })
        .unwrap_or_default();
        // Drop the closing brace: `frame` appends the per-topic fields.
        let shared = shared.strip_suffix('}').unwrap_or(&shared).into();
        Self {
            seq,
            message_id: event.event_id,
            shared,
            topics: topics.iter().map(|t| Box::<str>::from(*t)).collect(),
            received,
        }
    }

    /// The frame as delivered on `topic`.
    pub fn frame(&self, topic: &str) -> Utf8Bytes {
        let topic = serde_json::to_string(topic).unwrap_or_else(|_| "null".into());
        Utf8Bytes::from(format!("{},\"topic\":{topic},\"seq\":{}}}", self.shared, self.seq))
    }

    pub fn has_topic(&self, topic: &str) -> bool {
        self.topics.iter().any(|t| &**t == topic)
    }

    /// Approximate memory held: the text, and a slot in each topic's ring.
    fn cost(&self) -> usize {
        const OVERHEAD: usize = 96;
        self.shared.len() + self.topics.iter().map(|t| t.len() + 24).sum::<usize>() + OVERHEAD
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub events_per_topic: usize,
    pub max_age: Duration,
    pub max_bytes: usize,
}

#[derive(Default)]
struct TopicRing {
    events: VecDeque<Arc<StoredEvent>>,
    /// The newest sequence this ring dropped (0: none).
    evicted: u64,
}

pub struct History {
    limits: Limits,
    /// Every retained event in sequence order: age and memory evict from its front.
    all: VecDeque<Arc<StoredEvent>>,
    bytes: usize,
    topics: HashMap<Box<str>, TopicRing>,
    /// The node knows nothing at or below this sequence (its feed started after it).
    start: u64,
    /// The newest sequence evicted from a topic whose ring is now gone: a
    /// topic without a ring is complete only above it.
    forgotten: u64,
    head: u64,
}

impl History {
    /// A history that will hold every event after sequence `start`.
    pub fn new(limits: Limits, start: u64) -> Self {
        Self {
            limits,
            all: VecDeque::new(),
            bytes: 0,
            topics: HashMap::new(),
            start,
            forgotten: start,
            head: start,
        }
    }

    /// The newest sequence seen.
    pub fn head(&self) -> u64 {
        self.head
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Every event of `topic` with a sequence above the returned one is held.
    pub fn complete_after(&self, topic: &str) -> u64 {
        match self.topics.get(topic) {
            Some(ring) => self.start.max(ring.evicted),
            None => self.forgotten,
        }
    }

    /// Events of `topic` with `after < seq <= until`, oldest first, at most `max`.
    pub fn range(&self, topic: &str, after: u64, until: u64, max: usize) -> Vec<Arc<StoredEvent>> {
        let Some(ring) = self.topics.get(topic) else {
            return Vec::new();
        };
        let from = ring.events.partition_point(|e| e.seq <= after);
        ring.events
            .range(from..)
            .take_while(|e| e.seq <= until)
            .take(max)
            .cloned()
            .collect()
    }

    /// Adds the newest event; older ones go as the limits require.
    pub fn append(&mut self, event: Arc<StoredEvent>) {
        if event.seq <= self.head {
            return;
        }
        self.head = event.seq;
        for topic in event.topics.iter() {
            let ring = self.topics.entry(topic.clone()).or_default();
            ring.events.push_back(event.clone());
            if ring.events.len() > self.limits.events_per_topic
                && let Some(old) = ring.events.pop_front()
            {
                ring.evicted = old.seq;
            }
        }
        self.bytes += event.cost();
        let now = event.received;
        self.all.push_back(event);
        while let Some(oldest) = self.all.front() {
            let too_old = now.saturating_duration_since(oldest.received) > self.limits.max_age;
            if !too_old && self.bytes <= self.limits.max_bytes {
                break;
            }
            if let Some(old) = self.all.pop_front() {
                self.evict(&old);
            }
        }
    }

    fn evict(&mut self, old: &StoredEvent) {
        self.bytes = self.bytes.saturating_sub(old.cost());
        for topic in old.topics.iter() {
            let Some(ring) = self.topics.get_mut(topic) else {
                continue;
            };
            // Its ring may have dropped it already (too many events there).
            if ring.events.front().is_some_and(|e| e.seq == old.seq) {
                ring.events.pop_front();
                ring.evicted = old.seq;
            }
            if ring.events.is_empty() {
                let evicted = ring.evicted;
                self.topics.remove(topic);
                self.forgotten = self.forgotten.max(evicted);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_topic: usize, max_bytes: usize) -> Limits {
        Limits {
            events_per_topic: per_topic,
            max_age: Duration::from_secs(900),
            max_bytes,
        }
    }

    fn event(seq: u64, topics: &[&str], at: Instant) -> Arc<StoredEvent> {
        let env = EventEnvelope {
            v: 1,
            event_id: Uuid::now_v7(),
            event_type: "notification".into(),
            data: serde_json::json!({ "n": seq }),
            timestamp: chrono::Utc::now(),
        };
        Arc::new(StoredEvent::new(seq, &env, topics, at))
    }

    fn seqs(events: &[Arc<StoredEvent>]) -> Vec<u64> {
        events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn a_frame_is_the_shared_part_plus_its_topic_and_seq() {
        let e = event(7, &["tasks", "user.1"], Instant::now());
        let frame: serde_json::Value = serde_json::from_str(e.frame("user.1").as_str()).unwrap_or_default();
        assert_eq!(frame["topic"], "user.1");
        assert_eq!(frame["seq"], 7);
        assert_eq!(frame["event_type"], "notification");
        assert_eq!(frame["data"]["n"], 7);
        assert_eq!(frame["message_id"], e.message_id.to_string());
        assert!(frame["timestamp"].is_string());
    }

    #[test]
    fn range_returns_a_topics_events_after_a_cursor_in_order() {
        let now = Instant::now();
        let mut h = History::new(limits(100, 1 << 20), 10);
        for (seq, topics) in [(11, vec!["a"]), (12, vec!["b"]), (14, vec!["a", "b"]), (15, vec!["a"])] {
            h.append(event(seq, &topics, now));
        }
        assert_eq!(seqs(&h.range("a", 10, u64::MAX, 10)), [11, 14, 15]);
        assert_eq!(seqs(&h.range("a", 11, u64::MAX, 10)), [14, 15]);
        assert_eq!(seqs(&h.range("a", 11, 14, 10)), [14]);
        assert_eq!(seqs(&h.range("a", 10, u64::MAX, 2)), [11, 14]);
        assert_eq!(h.complete_after("a"), 10);
        assert_eq!(h.complete_after("never"), 10);
        assert_eq!(h.head(), 15);
    }

    #[test]
    fn a_full_topic_ring_drops_its_oldest_and_knows_it() {
        let now = Instant::now();
        let mut h = History::new(limits(2, 1 << 20), 0);
        for seq in 1..=5 {
            h.append(event(seq, &["a"], now));
        }
        h.append(event(6, &["b"], now));
        assert_eq!(seqs(&h.range("a", 0, u64::MAX, 10)), [4, 5]);
        assert_eq!(h.complete_after("a"), 3);
        assert_eq!(h.complete_after("b"), 0);
    }

    #[test]
    fn memory_and_age_evict_the_oldest_events_of_every_topic() {
        let now = Instant::now();
        let one = event(1, &["a"], now).cost();
        let mut h = History::new(limits(100, one * 3), 0);
        for seq in 1..=5 {
            h.append(event(seq, &["a", "b"], now));
        }
        assert!(h.bytes() <= one * 3 + 64, "{} bytes", h.bytes());
        let kept = seqs(&h.range("b", 0, u64::MAX, 10));
        assert_eq!(kept.last(), Some(&5));
        assert_eq!(h.complete_after("b"), kept[0] - 1);

        let mut h = History::new(limits(100, 1 << 20), 0);
        h.append(event(1, &["old"], now));
        h.append(event(2, &["new"], now + Duration::from_secs(901)));
        assert!(h.range("old", 0, u64::MAX, 10).is_empty());
        // A topic whose ring emptied is complete only above what was dropped.
        assert_eq!(h.complete_after("old"), 1);
        assert_eq!(h.complete_after("unknown"), 1);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn an_old_or_repeated_sequence_is_ignored() {
        let now = Instant::now();
        let mut h = History::new(limits(10, 1 << 20), 5);
        h.append(event(5, &["a"], now));
        h.append(event(6, &["a"], now));
        h.append(event(6, &["a"], now));
        assert_eq!(seqs(&h.range("a", 0, u64::MAX, 10)), [6]);
    }
}
