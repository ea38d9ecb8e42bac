//! `resume {topic, last_seq}`: from the node's history, from `GAD_EVENTS`
//! for what the history does not hold, `resync_required` beyond the
//! stream's retention; in order, nothing twice, then live.

use gad_e2e::board::{self, Board};
use gad_e2e::service_process::{BroadcasterProcess, Config};
use serde_json::json;

use super::support::{WITHIN, numbered, numbers, replay, seqs, topics};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_resume_replays_the_missed_events_from_the_history_then_goes_live() -> anyhow::Result<()> {
    let mut b = Board::start().await?;
    let (ws, _) = b.broadcaster(board::section()).await?;
    let tasks = topics(&["tasks"]);
    let mut first = Board::connect(&ws, &b.supervisor.token).await?;
    first.subscribe(&tasks).await?;
    // Stays connected: once it has 7, the node has read 3..8 into its history
    // (a resume that came earlier would rightly get them live instead).
    let mut watcher = Board::connect(&ws, &b.admin.token).await?;
    watcher.subscribe(&tasks).await?;
    let mut seq = Vec::new();
    for i in 0..3 {
        seq.push(b.publish("task_updated", &tasks, numbered(i, 0)).await?);
    }
    for i in 0..3 {
        let f = first.next_event("task_updated", WITHIN).await?;
        assert_eq!(f["data"]["i"], i);
    }
    first.close().await;
    for i in 3..8 {
        seq.push(b.publish("task_updated", &tasks, numbered(i, 0)).await?);
    }
    watcher.next_matching(WITHIN, |f| f["data"]["i"] == 7).await?;

    let mut again = Board::connect(&ws, &b.supervisor.token).await?;
    let (frames, subscribed) = replay(&mut again, "tasks", seq[2]).await?;
    assert_eq!(numbers(&frames), [3, 4, 5, 6, 7]);
    assert_eq!(seqs(&frames), &seq[3..]);
    assert!(frames.iter().all(|f| f["topic"] == "tasks"), "{frames:?}");
    assert_eq!(subscribed["data"]["topics"][0]["topic"], "tasks", "{subscribed}");
    assert!(subscribed["data"]["topics"][0]["seq"].as_u64() >= Some(seq[7]));
    b.publish("task_updated", &tasks, numbered(8, 0)).await?;
    let live = again.next_frame(WITHIN).await?;
    assert_eq!(live["data"]["i"], 8, "the next frame is the live event, once: {live}");
    again.close().await;
    watcher.close().await;
    b.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_resume_reads_the_stream_for_what_the_history_does_not_hold() -> anyhow::Result<()> {
    let mut b = Board::start().await?;
    let tasks = topics(&["tasks"]);
    let other = topics(&["efectivos"]);
    let mut seq = Vec::new();
    // Before the broadcaster starts: only the stream has these.
    for i in 0..6 {
        seq.push(b.publish("task_updated", &tasks, numbered(i, 0)).await?);
        b.publish("efectivo_status_changed", &other, json!({})).await?;
    }
    let mut section = board::section();
    // A history of 3 events per topic: older ones come from the stream too.
    section.history_events_per_topic = 3;
    let (ws, _) = b.broadcaster(section).await?;
    let mut watcher = Board::connect(&ws, &b.admin.token).await?;
    watcher.subscribe(&tasks).await?;
    for i in 6..12 {
        seq.push(b.publish("task_updated", &tasks, numbered(i, 0)).await?);
    }
    // Once the watcher has 11 the node has read them all: of 2..12, the
    // history holds only the last three.
    watcher.next_matching(WITHIN, |f| f["data"]["i"] == 11).await?;
    let mut ws = Board::connect(&ws, &b.supervisor.token).await?;
    let (frames, subscribed) = replay(&mut ws, "tasks", seq[1]).await?;
    assert_eq!(numbers(&frames), (2..12).collect::<Vec<_>>(), "{frames:?}");
    assert_eq!(seqs(&frames), &seq[2..]);
    assert_eq!(subscribed["event_type"], "subscribed", "{subscribed}");
    b.publish("task_updated", &tasks, numbered(12, 0)).await?;
    assert_eq!(ws.next_frame(WITHIN).await?["data"]["i"], 12);
    ws.close().await;
    b.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_resume_beyond_the_streams_retention_answers_resync_required() -> anyhow::Result<()> {
    let mut b = Board::start().await?;
    let tasks = topics(&["tasks"]);
    let mut seq = Vec::new();
    for i in 0..6 {
        seq.push(b.publish("task_updated", &tasks, numbered(i, 0)).await?);
    }
    // The stream forgets the first three, as max_age would.
    let mut stream = b.js.get_stream(b.topology.events_stream()).await?;
    stream.purge().sequence(seq[3]).await?;
    assert_eq!(stream.info().await?.state.first_sequence, seq[3]);
    let (ws, _) = b.broadcaster(board::section()).await?;
    let mut ws = Board::connect(&ws, &b.supervisor.token).await?;
    let (frames, answer) = replay(&mut ws, "tasks", seq[1]).await?;
    assert!(frames.is_empty(), "{frames:?}");
    assert_eq!(answer["event_type"], "error");
    assert_eq!(answer["data"]["error"], "resync_required", "{answer}");
    assert_eq!(answer["data"]["topic"], "tasks");
    assert_eq!(answer["topic"], serde_json::Value::Null);
    // From the last event the stream still follows, the resume is served.
    let (frames, answer) = replay(&mut ws, "tasks", seq[2]).await?;
    assert_eq!(numbers(&frames), [3, 4, 5]);
    assert_eq!(answer["event_type"], "subscribed", "{answer}");
    ws.close().await;
    b.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_resume_sends_nothing_a_connection_already_got_on_another_topic() -> anyhow::Result<()> {
    let mut b = Board::start().await?;
    let (ws, _) = b.broadcaster(board::section()).await?;
    let sup = b.supervisor.clone();
    let own = format!("user.{}", sup.id);
    let both = vec!["tasks".to_string(), own.clone()];
    let s0 = b.publish("task_assigned", &both, numbered(0, 0)).await?;
    let s1 = b.publish("task_updated", &topics(&["tasks"]), numbered(1, 0)).await?;
    let mut ws = Board::connect(&ws, &sup.token).await?;
    // Live on the own topic (auto-subscribed): event 2 arrives on user.{id}.
    b.publish("task_assigned", &both, numbered(2, 0)).await?;
    let live = ws.next_frame(WITHIN).await?;
    assert_eq!(
        (live["data"]["i"].clone(), live["topic"].clone()),
        (json!(2), json!(own))
    );

    // `tasks` from the start: 0 and 1, not 2 again.
    let (frames, subscribed) = replay(&mut ws, "tasks", s0 - 1).await?;
    assert_eq!(numbers(&frames), [0, 1], "{frames:?}");
    assert_eq!(seqs(&frames), [s0, s1]);
    assert_eq!(subscribed["event_type"], "subscribed");
    // The own topic, already live: only what came before the connection.
    let (frames, _) = replay(&mut ws, &own, s0 - 1).await?;
    assert_eq!(
        numbers(&frames),
        Vec::<u64>::new(),
        "event 0 came on tasks already: {frames:?}"
    );
    let next = b.publish("task_assigned", &both, numbered(3, 0)).await?;
    let f = ws.next_frame(WITHIN).await?;
    assert_eq!((f["data"]["i"].clone(), f["seq"].clone()), (json!(3), json!(next)));
    ws.close().await;
    b.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_resume_from_another_replicas_history_reads_the_stream() -> anyhow::Result<()> {
    // A node started after the events: what another replica held comes from the stream.
    let b = Board::start().await?;
    let tasks = topics(&["tasks"]);
    let mut seq = Vec::new();
    for i in 0..4 {
        seq.push(b.publish("task_updated", &tasks, numbered(i, 0)).await?);
    }
    let node = BroadcasterProcess::start(Config::broadcaster(&b.isolation), WITHIN).await?;
    let mut ws = Board::connect(&node.ws(), &b.supervisor.token).await?;
    let (frames, _) = replay(&mut ws, "tasks", seq[0]).await?;
    assert_eq!(numbers(&frames), [1, 2, 3]);
    ws.close().await;
    drop(node);
    b.stop().await
}
