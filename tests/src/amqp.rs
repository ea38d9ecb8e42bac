//! A RabbitMQ exchange and queue of the test's own (random names), as a
//! legacy publisher sees them: publish with confirms, count what waits.
//! [`AmqpTopic::remove`] deletes both; RabbitMQ has no prefix to sweep.

use std::time::Duration;

use anyhow::Context;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

use crate::services::ServiceUrls;

pub struct AmqpTopic {
    pub url: String,
    pub exchange: String,
    pub queue: String,
    connection: Connection,
    channel: Channel,
}

impl AmqpTopic {
    /// Connects; the names are free (the bridge declares them).
    pub async fn new() -> anyhow::Result<Self> {
        let url = ServiceUrls::get()?.amqp.clone();
        let id = format!("{:016x}", rand::random::<u64>());
        let connection = tokio::time::timeout(
            Duration::from_secs(10),
            Connection::connect(&url, ConnectionProperties::default()),
        )
        .await
        .context("connecting to RabbitMQ: timed out; run `deploy/services.sh up`")?
        .context("connecting to RabbitMQ; run `deploy/services.sh up`")?;
        let channel = connection.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        Ok(Self {
            url,
            exchange: format!("gad.test.{id}"),
            queue: format!("gad.test.{id}.bridge"),
            connection,
            channel,
        })
    }

    /// Publishes persistently to the exchange and waits for RabbitMQ's confirm.
    pub async fn publish(&self, body: &[u8], content_type: &str, message_id: Option<&str>) -> anyhow::Result<()> {
        let mut properties = BasicProperties::default()
            .with_content_type(content_type.into())
            .with_delivery_mode(2);
        if let Some(id) = message_id {
            properties = properties.with_message_id(id.into());
        }
        let confirm = self
            .channel
            .basic_publish(
                self.exchange.as_str().into(),
                "legacy.job".into(),
                // Returned, not silently dropped, when no queue is bound.
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                properties,
            )
            .await?
            .await?;
        anyhow::ensure!(
            confirm.is_ack() && confirm.take_message().is_none(),
            "RabbitMQ did not route the publish to the bridge's queue"
        );
        Ok(())
    }

    /// Messages in the queue not delivered to a consumer; `None` before the
    /// bridge declared it.
    pub async fn ready(&self) -> anyhow::Result<Option<u32>> {
        Ok(self.counts().await?.map(|(ready, _)| ready))
    }

    /// (ready messages, consumers) of the queue, once declared.
    async fn counts(&self) -> anyhow::Result<Option<(u32, u32)>> {
        // A failed passive declare closes the channel: probe on a fresh one.
        let probe = self.connection.create_channel().await?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let declared = probe
            .queue_declare(self.queue.as_str().into(), passive, FieldTable::default())
            .await;
        let _ = probe.close(200, "probe".into()).await;
        Ok(declared.ok().map(|q| (q.message_count(), q.consumer_count())))
    }

    /// Waits until the bridge consumes: it binds the queue before, and a
    /// message published to the exchange earlier would match no queue and
    /// be dropped.
    pub async fn wait_consuming(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        while self.counts().await?.is_none_or(|(_, consumers)| consumers == 0) {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the bridge never consumed {}",
                self.queue
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    pub async fn remove(self) -> anyhow::Result<()> {
        self.channel
            .queue_delete(self.queue.as_str().into(), QueueDeleteOptions::default())
            .await?;
        self.channel
            .exchange_delete(self.exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await?;
        let _ = self.connection.close(200, "done".into()).await;
        Ok(())
    }
}
