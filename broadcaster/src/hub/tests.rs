use std::time::{Duration, Instant};

use gad_shared::envelope::EventEnvelope;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::*;
use crate::frames::close;

const ROOMY: Capacity = Capacity {
    per_node: 100,
    per_user: 10,
};

fn hub() -> Hub {
    Hub::new(
        Limits {
            events_per_topic: 100,
            max_age: Duration::from_secs(900),
            max_bytes: 1 << 20,
        },
        0,
    )
}

fn conn(hub: &Hub, capacity: usize) -> (ConnId, mpsc::Receiver<Utf8Bytes>, ConnHandle) {
    let (tx, rx) = mpsc::channel(capacity);
    let handle = ConnHandle::new(tx, 1 << 20, 1);
    (hub.try_add(handle.clone(), ROOMY).unwrap(), rx, handle)
}

fn event(seq: u64, topics: &[&str]) -> Arc<StoredEvent> {
    let env = EventEnvelope {
        v: 1,
        event_id: Uuid::now_v7(),
        event_type: "notification".into(),
        data: serde_json::json!({}),
        timestamp: chrono::Utc::now(),
    };
    Arc::new(StoredEvent::new(seq, &env, topics, Instant::now()))
}

fn topic_and_seq(frame: &Utf8Bytes) -> (String, u64) {
    let v: serde_json::Value = serde_json::from_str(frame.as_str()).unwrap();
    (v["topic"].as_str().unwrap().to_string(), v["seq"].as_u64().unwrap())
}

#[test]
fn a_connection_on_two_matching_topics_gets_the_event_once() {
    let hub = hub();
    let (a, mut rx_a, _) = conn(&hub, 10);
    let (b, mut rx_b, _) = conn(&hub, 10);
    hub.subscribe(a, "tasks");
    hub.subscribe(a, "tasks.1");
    hub.subscribe(b, "tasks.1");
    assert_eq!(hub.publish(event(1, &["tasks", "tasks.1"])), 2);
    assert_eq!(topic_and_seq(&rx_a.try_recv().unwrap()), ("tasks".into(), 1));
    assert!(rx_a.try_recv().is_err());
    assert_eq!(topic_and_seq(&rx_b.try_recv().unwrap()), ("tasks.1".into(), 1));
}

#[test]
fn a_full_queue_closes_that_connection_as_slow_and_spares_the_others() {
    let hub = hub();
    let (slow, _rx_slow, slow_handle) = conn(&hub, 1);
    let (fast, mut rx_fast, fast_handle) = conn(&hub, 10);
    hub.subscribe(slow, "alerts");
    hub.subscribe(fast, "alerts");
    hub.publish(event(1, &["alerts"]));
    hub.publish(event(2, &["alerts"]));
    assert!(slow_handle.closing.is_cancelled());
    assert_eq!(slow_handle.close_code.load(Ordering::Relaxed), close::SLOW_CONSUMER);
    assert!(!fast_handle.closing.is_cancelled());
    assert_eq!(topic_and_seq(&rx_fast.try_recv().unwrap()).1, 1);
    assert_eq!(topic_and_seq(&rx_fast.try_recv().unwrap()).1, 2);
}

#[test]
fn removing_a_connection_drops_its_subscriptions_and_its_place() {
    let hub = hub();
    let one = Capacity {
        per_node: 100,
        per_user: 1,
    };
    let (tx, _rx) = mpsc::channel(1);
    let a = hub.try_add(ConnHandle::new(tx.clone(), 1 << 20, 7), one).unwrap();
    assert_eq!(
        hub.try_add(ConnHandle::new(tx.clone(), 1 << 20, 7), one),
        Err(OverCapacity::User)
    );
    hub.subscribe(a, "jobs.x");
    hub.remove(a);
    assert_eq!(hub.stats()["topics"], 0);
    assert_eq!(hub.publish(event(1, &["jobs.x"])), 0);
    assert!(hub.try_add(ConnHandle::new(tx, 1 << 20, 7), one).is_ok());
}

#[test]
fn a_resume_replays_then_subscribes_with_nothing_twice_and_nothing_lost() {
    let hub = hub();
    for seq in 1..=4 {
        hub.publish(event(seq, &["tasks"]));
    }
    let (a, mut rx, _) = conn(&hub, 10);
    let ReplayStep::Frames { frames, cursor } = hub.replay_step(a, "tasks", 2, 2, None, 10) else {
        panic!("expected frames");
    };
    assert_eq!(frames.iter().map(|f| topic_and_seq(f).1).collect::<Vec<_>>(), [3, 4]);
    // Published while the client was being sent the replay: found on the next step.
    hub.publish(event(5, &["tasks"]));
    let ReplayStep::Frames { frames, cursor } = hub.replay_step(a, "tasks", 2, cursor, None, 10) else {
        panic!("expected the event published meanwhile");
    };
    assert_eq!((frames.len(), cursor), (1, 5));
    assert!(matches!(
        hub.replay_step(a, "tasks", 2, cursor, None, 10),
        ReplayStep::Done { head: 5 }
    ));
    hub.publish(event(6, &["tasks"]));
    assert_eq!(topic_and_seq(&rx.try_recv().unwrap()).1, 6);
    assert!(rx.try_recv().is_err());
}

#[test]
fn a_resume_skips_what_another_subscribed_topic_delivered_and_finds_gaps() {
    let hub = hub();
    let (a, _rx, _) = conn(&hub, 10);
    hub.subscribe(a, "user.1");
    hub.publish(event(1, &["tasks", "user.1"]));
    hub.publish(event(2, &["tasks"]));
    let ReplayStep::Frames { frames, cursor } = hub.replay_step(a, "tasks", 0, 0, None, 10) else {
        panic!("expected frames");
    };
    assert_eq!(frames.iter().map(|f| topic_and_seq(f).1).collect::<Vec<_>>(), [2]);
    assert_eq!(cursor, 2);

    let late = Hub::new(
        Limits {
            events_per_topic: 100,
            max_age: Duration::from_secs(900),
            max_bytes: 1 << 20,
        },
        10,
    );
    let (b, _rx, _) = conn(&late, 10);
    assert!(matches!(
        late.replay_step(b, "tasks", 3, 3, None, 10),
        ReplayStep::Missing { upto: 10 }
    ));
    // A client ahead of this node is not sent again what it has.
    assert!(matches!(
        late.replay_step(b, "tasks", 12, 12, None, 10),
        ReplayStep::Done { head: 10 }
    ));
    assert_eq!(late.subscribed_after(b, "tasks"), Some(12));
}
