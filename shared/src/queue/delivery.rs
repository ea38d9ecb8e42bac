//! One delivery of a job to a worker, from either broker, and the one way
//! to settle it.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind};
use bytes::Bytes;
use lapin::options::{BasicAckOptions, BasicNackOptions};

use super::rabbit::{ATTEMPTS_BEFORE, RabbitLink, is_delivery_bookkeeping, to_field_table};

/// The acknowledgement a settled delivery gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    Ack,
    /// Redeliver after the delay.
    Nak(Duration),
    /// Never redeliver; the dead-letter record is written first.
    Term,
}

pub struct Delivery {
    pub subject: String,
    pub headers: Option<HeaderMap>,
    pub payload: Bytes,
    /// 1-based: every earlier delivery of this job counts, retries included.
    pub attempt: u32,
    /// The job id the publisher gave the message, if any.
    pub message_id: Option<String>,
    pub acker: Acker,
}

pub enum Acker {
    JetStream(Box<jetstream::Message>),
    RabbitMq { acker: lapin::Acker, link: RabbitLink },
}

#[derive(Debug, thiserror::Error)]
#[error("acknowledgement not sent: {0}")]
pub struct SettleError(String);

impl Delivery {
    pub fn from_jetstream(mut msg: jetstream::Message) -> Self {
        let attempt = msg.info().map(|i| i.delivered.max(1) as u32).unwrap_or(1);
        // Moved out, not copied: acknowledging needs only the reply subject.
        let headers = msg.message.headers.take();
        let payload = std::mem::take(&mut msg.message.payload);
        let message_id = headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.as_str().to_string());
        Self {
            subject: msg.message.subject.to_string(),
            headers,
            payload,
            attempt,
            message_id,
            acker: Acker::JetStream(Box::new(msg)),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.as_ref()?.get(name).map(|v| v.as_str())
    }

    /// Sends `ack`. On RabbitMQ a delayed redelivery is a copy published to
    /// the retry bucket for the delay (carrying the attempts so far), and the
    /// delivery is acknowledged only once that copy is confirmed; a copy the
    /// broker would not take turns into an immediate redelivery instead.
    pub async fn settle(&self, ack: Ack) -> Result<(), SettleError> {
        match &self.acker {
            Acker::JetStream(msg) => {
                let kind = match ack {
                    Ack::Ack => AckKind::Ack,
                    Ack::Nak(delay) => AckKind::Nak(Some(delay)),
                    Ack::Term => AckKind::Term,
                };
                msg.ack_with(kind).await.map_err(|e| SettleError(e.to_string()))
            }
            Acker::RabbitMq { acker, link } => {
                let requeue = BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                };
                let sent = match ack {
                    Ack::Ack | Ack::Term => acker.ack(BasicAckOptions::default()).await,
                    Ack::Nak(delay) => match link.settings().bucket_for(delay) {
                        None => acker.nack(requeue).await,
                        Some(bucket) => match self.retry_copy(link, bucket).await {
                            Ok(()) => acker.ack(BasicAckOptions::default()).await,
                            Err(e) => {
                                tracing::warn!(error = %e, "retry copy not stored; redelivering now");
                                acker.nack(requeue).await
                            }
                        },
                    },
                };
                sent.map(|_| ()).map_err(|e| SettleError(e.to_string()))
            }
        }
    }

    async fn retry_copy(&self, link: &RabbitLink, bucket: Duration) -> Result<(), super::PublishFailure> {
        let mut headers = HeaderMap::new();
        for (name, values) in self.headers.iter().flat_map(|h| h.iter()) {
            let name: &str = name.as_ref();
            if is_delivery_bookkeeping(name) {
                continue;
            }
            if let Some(v) = values.first() {
                headers.insert(name, v.as_str());
            }
        }
        headers.insert(ATTEMPTS_BEFORE, self.attempt.to_string().as_str());
        let exchange = link.names().retry(bucket);
        let id = self.message_id.as_deref().unwrap_or_default();
        link.publish(&exchange, &self.subject, to_field_table(&headers), &self.payload, id)
            .await
    }
}
