//! This node's reading of `GAD_EVENTS`: every replica reads every event (an
//! ordered consumer starting at "new") and hands it to its own hub.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::{self, consumer::Consumer};
use futures::StreamExt;
use gad_shared::envelope::{self, EventEnvelope, headers};
use gad_shared::topology::Topology;
use tokio_util::sync::CancellationToken;

use crate::frames::ServerFrame;
use crate::hub::Hub;

/// Creates the consumer now, so events published after start-up are not missed.
pub async fn subscribe(
    js: &jetstream::Context,
    topology: &Topology,
) -> Result<Consumer<pull::OrderedConfig>, async_nats::Error> {
    let stream = js.get_stream(topology.events_stream()).await?;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: topology.events_filter(),
            deliver_policy: DeliverPolicy::New,
            ..Default::default()
        })
        .await?;
    Ok(consumer)
}

pub async fn run(
    consumer: Consumer<pull::OrderedConfig>,
    hub: Hub,
    head_seq: Arc<AtomicU64>,
    cancel: CancellationToken,
) {
    let mut messages = match consumer.messages().await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "cannot read GAD_EVENTS; no events will be delivered");
            return;
        }
    };
    loop {
        let msg = tokio::select! {
            _ = cancel.cancelled() => break,
            m = messages.next() => m,
        };
        let msg = match msg {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "event feed error");
                continue;
            }
            None => break,
        };
        let seq = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
        head_seq.fetch_max(seq, Ordering::Relaxed);
        let topics_header = msg
            .headers
            .as_ref()
            .and_then(|h| h.get(headers::TOPICS))
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        let topics: Vec<&str> = topics_header
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        let event: EventEnvelope = match envelope::decode(&msg.payload, None) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, seq, "undecodable event skipped");
                continue;
            }
        };
        hub.deliver(&topics, |topic| {
            ServerFrame {
                event_type: &event.event_type,
                data: &event.data,
                timestamp: event.timestamp,
                message_id: event.event_id,
                topic: Some(topic),
                seq: Some(seq),
            }
            .to_text()
        });
    }
}
