//! Publishing a job on whichever broker carries the jobs. Either way a job
//! counts as stored only once the broker confirmed it (a PubAck, or a
//! publisher confirm), and the job id goes with it: JetStream drops a second
//! copy inside its duplicate window; on RabbitMQ, which has no broker-side
//! dedup, the worker drops it (a job's `jobs` row admits one live delivery).

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;

use super::rabbit::{RabbitLink, RabbitNames, to_field_table};
use super::{Backend, QueueSettings};
use crate::settings::NatsSettings;

#[derive(Clone)]
pub enum Publisher {
    JetStream {
        js: Box<jetstream::Context>,
        /// Longest wait for the PubAck.
        timeout: Duration,
    },
    RabbitMq(RabbitLink),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishFailure {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("job queue full")]
    QueueFull,
}

impl Publisher {
    /// The publisher `queue.backend` names; a RabbitMQ one connects on first use.
    pub fn new(queue: &QueueSettings, nats: &NatsSettings, js: jetstream::Context, name: &str) -> Self {
        match queue.backend {
            Backend::Jetstream => Publisher::JetStream {
                js: Box::new(js),
                timeout: nats.publish_timeout,
            },
            Backend::Rabbitmq => Publisher::RabbitMq(RabbitLink::lazy(&queue.rabbitmq, RabbitNames::new(nats), name)),
        }
    }

    /// Publishes one job message under its subject and id; `Ok(true)` when
    /// the broker already had it (JetStream's duplicate window).
    pub async fn publish(
        &self,
        subject: &str,
        headers: &HeaderMap,
        payload: &Bytes,
        message_id: &str,
    ) -> Result<bool, PublishFailure> {
        match self {
            Publisher::JetStream { js, timeout } => {
                let message = PublishMessage::build()
                    .payload(payload.clone())
                    .headers(headers.clone())
                    .message_id(message_id);
                let publish = async {
                    let ack = js.send_publish(subject.to_string(), message).await?;
                    ack.await
                };
                match tokio::time::timeout(*timeout, publish).await {
                    Ok(Ok(ack)) => Ok(ack.duplicate),
                    Ok(Err(e)) => Err(classify(e)),
                    Err(_) => Err(PublishFailure::Unavailable("no PubAck within the timeout".into())),
                }
            }
            Publisher::RabbitMq(link) => {
                let exchange = link.names().exchange();
                link.publish(&exchange, subject, to_field_table(headers), payload, message_id)
                    .await
                    .map(|()| false)
            }
        }
    }
}

/// What a failed JetStream publish means to the submitter: a full stream or NATS away.
fn classify(e: jetstream::context::PublishError) -> PublishFailure {
    use jetstream::context::PublishErrorKind;
    let text = e.to_string();
    match e.kind() {
        // discard-new streams refuse with "maximum messages/bytes exceeded".
        PublishErrorKind::Other if text.contains("maximum") => PublishFailure::QueueFull,
        _ => PublishFailure::Unavailable(text),
    }
}
