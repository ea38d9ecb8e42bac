//! `/ws/_test/broadcast` (not in production) and `/ws/stats` (§6.3).

use gad_e2e::board::{self, Board};
use serde_json::{Value, json};

use super::support::{WITHIN, replay, topics};

fn http(ws: &str) -> String {
    ws.replacen("ws://", "http://", 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_test_broadcast_reaches_subscribers_through_the_stream_and_stats_count_them() -> anyhow::Result<()> {
    let mut b = Board::start().await?;
    let (ws, _) = b.broadcaster(board::section()).await?;
    let mut c = Board::connect(&ws, &b.supervisor.token).await?;
    c.subscribe(&topics(&["alerts"])).await?;
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/ws/_test/broadcast", http(&ws)))
        .json(&json!({ "title": "Prueba", "content": "hola", "level": "warning" }))
        .send()
        .await?;
    assert_eq!(r.status(), 202);
    let sent: Value = r.json().await?;
    let f = c.next_event("notification", WITHIN).await?;
    assert_eq!(f["topic"], "alerts");
    assert_eq!(f["message_id"], sent["message_id"]);
    assert_eq!(f["seq"], sent["seq"]);
    assert_eq!(
        (
            f["data"]["title"].clone(),
            f["data"]["content"].clone(),
            f["data"]["level"].clone()
        ),
        (json!("Prueba"), json!("hola"), json!("warning"))
    );
    assert!(f["data"]["notification_id"].is_string(), "{f}");
    // It is in the stream, so a resume finds it.
    let mut again = Board::connect(&ws, &b.admin.token).await?;
    let seq = sent["seq"].as_u64().unwrap_or(1);
    let (frames, _) = replay(&mut again, "alerts", seq - 1).await?;
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0]["message_id"], sent["message_id"]);
    let bad = client
        .post(format!("{}/ws/_test/broadcast", http(&ws)))
        .json(&json!({ "level": "loud" }))
        .send()
        .await?;
    assert_eq!(bad.status(), 400);

    let stats: Value = client
        .get(format!("{}/ws/stats", http(&ws)))
        .bearer_auth(&b.admin.token)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(stats["connections"], 2, "{stats}");
    assert!(stats["topics"].as_u64() >= Some(3), "{stats}");
    assert!(stats["queue_depth"]["max"].is_number(), "{stats}");
    assert!(stats["head_seq"].as_u64() >= Some(seq), "{stats}");
    c.close().await;
    again.close().await;
    b.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_test_broadcast_does_not_exist_in_production() -> anyhow::Result<()> {
    let mut b = Board::start().await?;
    let (ws, _) = b
        .broadcaster_in(gad_shared::settings::Environment::Production, board::section())
        .await?;
    let r = reqwest::Client::new()
        .post(format!("{}/ws/_test/broadcast", http(&ws)))
        .json(&json!({}))
        .send()
        .await?;
    assert_eq!(r.status(), 404);
    b.stop().await
}
