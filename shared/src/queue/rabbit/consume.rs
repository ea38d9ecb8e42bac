//! One lane's consumer on RabbitMQ: a channel of its own whose prefetch is
//! the process' concurrency for the lane (the broker hands out no more
//! unacknowledged jobs than that).

use async_nats::HeaderMap;
use bytes::Bytes;
use futures::StreamExt;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Consumer};

use super::headers::to_header_map;
use super::link::{RabbitError, RabbitLink};
use super::{ATTEMPTS_BEFORE, DELIVERY_COUNT};
use crate::envelope::headers;
use crate::queue::{Acker, Delivery};

pub struct RabbitConsumer {
    link: RabbitLink,
    channel: Channel,
    consumer: Consumer,
    tag: String,
}

impl RabbitConsumer {
    /// Consumes lane `group`'s queue.
    pub async fn start(link: &RabbitLink, group: &str, prefetch: u16) -> Result<Self, RabbitError> {
        Self::start_on(link, &link.names().queue(group), prefetch).await
    }

    /// Consumes the queue named `queue`.
    pub async fn start_on(link: &RabbitLink, queue: &str, prefetch: u16) -> Result<Self, RabbitError> {
        let channel = link.channel().await?;
        channel.basic_qos(prefetch, BasicQosOptions::default()).await?;
        let tag = format!("gad-{queue}-{}", uuid::Uuid::new_v4());
        let consumer = channel
            .basic_consume(
                queue.into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(Self {
            link: link.clone(),
            channel,
            consumer,
            tag,
        })
    }

    /// A handle on the consumer's channel (it closes with its last handle).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The next delivery; `None` when the channel or connection closed.
    pub async fn next(&mut self) -> Option<Result<Delivery, RabbitError>> {
        let next = self.consumer.next().await?;
        Some(next.map(|d| delivery_from(d, &self.link)).map_err(RabbitError::from))
    }

    /// Stops deliveries, and hands the ones already buffered back to the
    /// queue at once; the channel stays open for the jobs still running.
    pub async fn stop(mut self) -> Channel {
        if let Err(e) = self
            .channel
            .basic_cancel(self.tag.as_str().into(), BasicCancelOptions::default())
            .await
        {
            tracing::debug!(error = %e, "consumer not cancelled; the channel's close hands its jobs back");
        }
        let requeue = BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        };
        while let Some(Some(Ok(d))) = futures::FutureExt::now_or_never(self.consumer.next()) {
            let _ = d.acker.nack(requeue).await;
        }
        self.channel
    }
}

/// A RabbitMQ delivery as the workers see every delivery. The attempt
/// counts the attempts before this copy (a retry copy carries them) plus
/// the broker's redeliveries of it (a worker that crashed or handed it back).
pub fn delivery_from(d: lapin::message::Delivery, link: &RabbitLink) -> Delivery {
    let mut hdrs: HeaderMap = to_header_map(d.properties.headers().as_ref());
    if hdrs.get(headers::CONTENT_TYPE).is_none()
        && let Some(ct) = d.properties.content_type()
    {
        hdrs.insert(headers::CONTENT_TYPE, ct.as_str());
    }
    let count = |name: &str| -> u32 { hdrs.get(name).and_then(|v| v.as_str().parse::<u32>().ok()).unwrap_or(0) };
    let attempt = count(ATTEMPTS_BEFORE)
        .saturating_add(count(DELIVERY_COUNT))
        .saturating_add(1);
    Delivery {
        subject: d.routing_key.as_str().to_string(),
        message_id: d.properties.message_id().as_ref().map(|m| m.as_str().to_string()),
        payload: Bytes::from(d.data),
        headers: Some(hdrs),
        attempt,
        acker: Acker::RabbitMq {
            acker: d.acker,
            link: link.clone(),
        },
    }
}
