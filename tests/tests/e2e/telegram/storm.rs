//! A 429 storm: the fake answers 429 with `retry_after`, then 5xx, then OK.
//! Every notification is delivered exactly once (nothing is sent for it after
//! the fake answered 200), no chat ever gets two calls within a second, and
//! the bot never makes more than 25 calls in any second. Priority 0 goes
//! ahead of bulk.

use std::collections::HashMap;
use std::time::Duration;

use gad_e2e::fake_telegram::Fault;
use gad_e2e::spawn_app_with_telegram;

use super::support::{linked_usuarios, notification, settled};

/// Telegram counts the limit on its side; the calls' arrival times here
/// include loopback scheduling noise of a few milliseconds.
const CLOCK_SLACK: Duration = Duration::from_millis(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_notification_arrives_once_through_a_429_storm_within_the_rate_limits() -> anyhow::Result<()> {
    let app = spawn_app_with_telegram().await?;
    let fake = app
        .telegram
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no fake telegram"))?;
    let linked = linked_usuarios(&app, 5).await?;
    fake.fail_for(Fault::TooManyRequests { retry_after: 1 }, Duration::from_secs(4));
    fake.fail_for(Fault::ServerError, Duration::from_secs(2));

    let mut markers = HashMap::new();
    for round in 0..5 {
        for (i, &(usuario, _chat)) in linked.iter().enumerate() {
            let marker = format!("aviso {round}-{i}-{}", uuid::Uuid::now_v7().simple());
            let priority = if (round + i) % 3 == 0 { 0 } else { 1 };
            let id = notification(&app, usuario, priority, &marker).await?;
            markers.insert(marker, id);
        }
    }
    let ids: Vec<_> = markers.values().copied().collect();
    let rows = settled(&app, &ids, Duration::from_secs(90)).await?;
    for (id, status, message_id) in &rows {
        assert_eq!(status, "sent", "{id}");
        assert!(message_id.is_some(), "{id} has its telegram_message_id");
    }

    let calls: Vec<_> = fake.calls().into_iter().filter(|c| c.method == "sendMessage").collect();
    assert!(calls.iter().any(|c| c.status == 429), "the storm happened");
    assert!(calls.iter().any(|c| c.status == 500), "the 5xx phase happened");
    for (marker, id) in &markers {
        let mine: Vec<_> = calls
            .iter()
            .filter(|c| c.text().is_some_and(|t| t.contains(marker.as_str())))
            .collect();
        let ok: Vec<_> = mine.iter().filter(|c| c.ok()).collect();
        assert_eq!(ok.len(), 1, "{id} delivered exactly once");
        let after = mine.iter().filter(|c| c.at > ok[0].at).count();
        assert_eq!(after, 0, "{id}: nothing sent after the fake answered 200");
        let message_id = rows.iter().find(|r| r.0 == *id).and_then(|r| r.2);
        assert_eq!(
            message_id, ok[0].message_id,
            "{id}: the stored message id is Telegram's"
        );
    }
    for &(_, chat) in &linked {
        let times: Vec<_> = calls
            .iter()
            .filter(|c| c.chat_id() == Some(chat))
            .map(|c| c.at)
            .collect();
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap + CLOCK_SLACK >= Duration::from_secs(1),
                "chat {chat}: two calls {gap:?} apart"
            );
        }
    }
    let all: Vec<_> = fake.calls().into_iter().map(|c| c.at).collect();
    for (i, start) in all.iter().enumerate() {
        let in_second = all[i..]
            .iter()
            .take_while(|t| **t - *start < Duration::from_secs(1))
            .count();
        assert!(in_second <= 25, "{in_second} calls within one second");
    }
    app.stop().await
}
