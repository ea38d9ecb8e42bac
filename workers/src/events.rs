//! Publishing events to `GAD_EVENTS`: one message per event, its WebSocket
//! topics in a header, its id as the message id (deduplicated on retry).

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use chrono::{DateTime, Utc};
use gad_shared::envelope::{self, CONTENT_TYPE_MSGPACK, ENVELOPE_VERSION, EventEnvelope, headers};
use gad_shared::topology::Topology;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("encoding event: {0}")]
    Encode(#[from] envelope::EnvelopeError),
    #[error("publishing event: {0}")]
    Publish(#[from] jetstream::context::PublishError),
}

pub struct Event<'a> {
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub data: serde_json::Value,
    pub timestamp: DateTime<Utc>,
    pub topics: &'a [String],
    /// Per-message TTL (job events are kept 15 minutes).
    pub ttl: Option<Duration>,
    /// The trace of the job the event is about (W3C `traceparent`).
    pub traceparent: Option<&'a str>,
}

/// The subject and message of `event`.
pub fn message(topology: &Topology, event: Event<'_>) -> Result<(String, PublishMessage), EventError> {
    let envelope = EventEnvelope {
        v: ENVELOPE_VERSION,
        event_id: event.event_id,
        event_type: event.event_type.to_string(),
        data: event.data,
        timestamp: event.timestamp,
    };
    let mut hdrs = HeaderMap::new();
    hdrs.insert(headers::CONTENT_TYPE, CONTENT_TYPE_MSGPACK);
    hdrs.insert(headers::TOPICS, event.topics.join(",").as_str());
    if let Some(trace) = event.traceparent {
        hdrs.insert(headers::TRACEPARENT, trace);
    }
    let mut msg = PublishMessage::build()
        .payload(envelope::encode(&envelope)?)
        .headers(hdrs)
        .message_id(event.event_id.to_string());
    if let Some(ttl) = event.ttl {
        msg = msg.ttl(ttl);
    }
    Ok((topology.event_subject(event.event_type), msg))
}

/// Publishes one event and waits for its acknowledgement.
pub async fn publish_event(
    js: &jetstream::Context,
    topology: &Topology,
    event_type: &str,
    data: serde_json::Value,
    topics: &[String],
    ttl: Option<Duration>,
) -> Result<(), EventError> {
    let trace = gad_shared::trace_context::outgoing().map(|t| t.to_string());
    let event = Event {
        event_id: Uuid::now_v7(),
        event_type,
        data,
        timestamp: Utc::now(),
        topics,
        ttl,
        traceparent: trace.as_deref(),
    };
    let (subject, msg) = message(topology, event)?;
    js.send_publish(subject, msg).await?.await?;
    Ok(())
}
