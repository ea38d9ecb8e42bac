//! One connection to RabbitMQ per process, made again after it is lost: the
//! names declared on every connect (idempotent, so every replica declares
//! them and whoever is first creates them), a publishing channel in confirm
//! mode, and consuming channels on demand.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use lapin::Confirmation;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};

use super::names::RabbitNames;
use crate::job::GROUPS;
use crate::queue::publisher::PublishFailure;
use crate::queue::settings::RabbitSettings;

#[derive(Debug, thiserror::Error)]
pub enum RabbitError {
    #[error("RabbitMQ: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("RabbitMQ: no connection within {0:?}")]
    ConnectTimeout(Duration),
}

#[derive(Clone)]
pub struct RabbitLink {
    inner: Arc<Inner>,
}

struct Inner {
    settings: RabbitSettings,
    names: RabbitNames,
    name: String,
    live: RwLock<Option<Live>>,
    /// One reconnect at a time; the others wait for its result.
    reconnecting: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct Live {
    connection: Arc<Connection>,
    publish: Channel,
}

impl Live {
    fn usable(&self) -> bool {
        self.connection.status().connected() && self.publish.status().connected()
    }
}

impl RabbitLink {
    /// Connects on first use (a process that must answer 503 while the
    /// broker is away starts without it).
    pub fn lazy(settings: &RabbitSettings, names: RabbitNames, name: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings: settings.clone(),
                names,
                name: name.to_string(),
                live: RwLock::new(None),
                reconnecting: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Connects and declares at once, so a process with a wrong URL stops at start.
    pub async fn connect(settings: &RabbitSettings, names: RabbitNames, name: &str) -> Result<Self, RabbitError> {
        let link = Self::lazy(settings, names, name);
        link.live().await?;
        Ok(link)
    }

    pub fn names(&self) -> &RabbitNames {
        &self.inner.names
    }

    pub fn settings(&self) -> &RabbitSettings {
        &self.inner.settings
    }

    fn current(&self) -> Option<Live> {
        let live = self.inner.live.read().unwrap_or_else(|p| p.into_inner());
        live.as_ref().filter(|l| l.usable()).cloned()
    }

    async fn live(&self) -> Result<Live, RabbitError> {
        if let Some(live) = self.current() {
            return Ok(live);
        }
        let _one = self.inner.reconnecting.lock().await;
        if let Some(live) = self.current() {
            return Ok(live);
        }
        let timeout = self.inner.settings.connect_timeout;
        let live = tokio::time::timeout(timeout, self.open())
            .await
            .map_err(|_| RabbitError::ConnectTimeout(timeout))??;
        *self.inner.live.write().unwrap_or_else(|p| p.into_inner()) = Some(live.clone());
        Ok(live)
    }

    async fn open(&self) -> Result<Live, RabbitError> {
        let properties = ConnectionProperties::default().with_connection_name(self.inner.name.clone().into());
        let connection = Connection::connect(&self.inner.settings.url, properties).await?;
        let publish = connection.create_channel().await?;
        declare(&publish, &self.inner.names, &self.inner.settings).await?;
        publish.confirm_select(ConfirmSelectOptions::default()).await?;
        Ok(Live {
            connection: Arc::new(connection),
            publish,
        })
    }

    /// A new channel on the live connection, for one consumer.
    pub async fn channel(&self) -> Result<Channel, RabbitError> {
        let live = self.live().await?;
        Ok(live.connection.create_channel().await?)
    }

    /// Publishes to `exchange` and waits for the broker's confirm, within
    /// the publish timeout. `mandatory`: a message no queue takes is an
    /// error, not a silent drop.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        headers: FieldTable,
        payload: &[u8],
        message_id: &str,
    ) -> Result<(), PublishFailure> {
        let timeout = self.inner.settings.publish_timeout;
        let confirmed = tokio::time::timeout(timeout, async {
            let live = self
                .live()
                .await
                .map_err(|e| PublishFailure::Unavailable(e.to_string()))?;
            let properties = BasicProperties::default()
                .with_delivery_mode(2)
                .with_message_id(message_id.into())
                .with_headers(headers);
            let options = BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            };
            let confirm = live
                .publish
                .basic_publish(exchange.into(), routing_key.into(), options, payload, properties)
                .await
                .map_err(unavailable)?;
            confirm.await.map_err(unavailable)
        })
        .await
        .map_err(|_| PublishFailure::Unavailable("no publisher confirm within the timeout".into()))??;
        match confirmed {
            Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
            Confirmation::Ack(Some(_)) => Err(PublishFailure::Unavailable(format!(
                "no queue is bound for {routing_key}"
            ))),
            // A lane at its max-length refuses (reject-publish): the only nack
            // a healthy broker sends.
            Confirmation::Nack(_) => Err(PublishFailure::QueueFull),
        }
    }

    /// Jobs waiting in each lane's queue (ready, not yet delivered). AMQP
    /// does not tell how many are delivered and unacknowledged.
    pub async fn depths(&self) -> Result<Vec<(&'static str, u64)>, RabbitError> {
        let channel = self.channel().await?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let mut depths = Vec::with_capacity(GROUPS.len());
        for group in GROUPS {
            let q = channel
                .queue_declare(
                    self.inner.names.queue(group).as_str().into(),
                    passive,
                    FieldTable::default(),
                )
                .await?;
            depths.push((*group, u64::from(q.message_count())));
        }
        let _ = channel.close(200, "read".into()).await;
        Ok(depths)
    }

    /// Closes the connection (acknowledgements already sent are kept; a
    /// delivery not yet settled goes back to its queue).
    pub async fn close(&self) {
        let live = self.inner.live.write().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(live) = live {
            let _ = live.connection.close(200, "shutdown".into()).await;
        }
    }

    /// Deletes every queue and exchange under these names (tests and tenants
    /// that leave); missing ones are fine.
    pub async fn delete_all(&self) -> Result<(), RabbitError> {
        let channel = self.channel().await?;
        let names = &self.inner.names;
        let mut queues: Vec<String> = GROUPS.iter().map(|g| names.queue(g)).collect();
        let mut exchanges = vec![names.exchange()];
        for b in &self.inner.settings.retry_buckets {
            queues.push(names.retry(*b));
            exchanges.push(names.retry(*b));
        }
        queues.push(names.dead());
        exchanges.push(names.dead());
        for q in queues {
            channel
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await?;
        }
        for x in exchanges {
            channel
                .exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
                .await?;
        }
        self.close().await;
        Ok(())
    }
}

fn unavailable(e: lapin::Error) -> PublishFailure {
    PublishFailure::Unavailable(e.to_string())
}

fn text(v: &str) -> AMQPValue {
    AMQPValue::LongString(v.into())
}

/// The exchanges and queues of the module docs.
async fn declare(channel: &Channel, names: &RabbitNames, settings: &RabbitSettings) -> Result<(), lapin::Error> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    let exchange = names.exchange();
    let dead = names.dead();
    channel
        .exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            dead.as_str().into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        )
        .await?;
    let mut quorum = FieldTable::default();
    quorum.insert("x-queue-type".into(), text("quorum"));
    channel
        .queue_declare(dead.as_str().into(), QueueDeclareOptions::durable(), quorum.clone())
        .await?;
    bind(channel, &dead, &dead, "").await?;
    for group in GROUPS {
        let queue = names.queue(group);
        let mut args = quorum.clone();
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(settings.delivery_limit)),
        );
        args.insert("x-dead-letter-exchange".into(), text(&dead));
        args.insert(
            "x-max-length".into(),
            AMQPValue::LongLongInt(i64::try_from(settings.max_length).unwrap_or(i64::MAX)),
        );
        args.insert("x-overflow".into(), text("reject-publish"));
        channel
            .queue_declare(queue.as_str().into(), QueueDeclareOptions::durable(), args)
            .await?;
        bind(channel, &queue, &exchange, &names.binding(group)).await?;
    }
    for bucket in &settings.retry_buckets {
        let name = names.retry(*bucket);
        channel
            .exchange_declare(
                name.as_str().into(),
                ExchangeKind::Fanout,
                durable,
                FieldTable::default(),
            )
            .await?;
        // Classic: every message in a bucket has the same TTL, so the head
        // always expires first. Without a dead-letter routing key an expired
        // message keeps its own, the job's subject, and `GAD_JOBS` routes it
        // back to its lane.
        let mut args = FieldTable::default();
        args.insert(
            "x-message-ttl".into(),
            AMQPValue::LongLongInt(i64::try_from(bucket.as_millis()).unwrap_or(i64::MAX)),
        );
        args.insert("x-dead-letter-exchange".into(), text(&exchange));
        channel
            .queue_declare(name.as_str().into(), QueueDeclareOptions::durable(), args)
            .await?;
        bind(channel, &name, &name, "").await?;
    }
    Ok(())
}

async fn bind(channel: &Channel, queue: &str, exchange: &str, key: &str) -> Result<(), lapin::Error> {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}
