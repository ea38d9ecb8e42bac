//! Publishing events to `GAD_EVENTS`: one message per event, its WebSocket
//! topics in a header, its id as the message id (deduplicated on retry).

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use chrono::Utc;
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

pub async fn publish_event(
    js: &jetstream::Context,
    topology: &Topology,
    event_type: &str,
    data: serde_json::Value,
    topics: &[String],
    ttl: Option<Duration>,
) -> Result<(), EventError> {
    let event = EventEnvelope {
        v: ENVELOPE_VERSION,
        event_id: Uuid::now_v7(),
        event_type: event_type.to_string(),
        data,
        timestamp: Utc::now(),
    };
    let mut hdrs = HeaderMap::new();
    hdrs.insert(headers::CONTENT_TYPE, CONTENT_TYPE_MSGPACK);
    hdrs.insert(headers::TOPICS, topics.join(",").as_str());
    let mut msg = PublishMessage::build()
        .payload(envelope::encode(&event)?)
        .headers(hdrs)
        .message_id(event.event_id.to_string());
    if let Some(ttl) = ttl {
        msg = msg.ttl(ttl);
    }
    js.send_publish(topology.event_subject(event_type), msg).await?.await?;
    Ok(())
}
