//! AMQP ingest: legacy systems publish jobs (the same envelope as on NATS,
//! README "Wire format") to a RabbitMQ exchange, and this bridge moves them
//! into `GAD_JOBS`. A message is acknowledged to RabbitMQ only after
//! JetStream's PubAck, so a crash, a lost connection or a NATS outage loses
//! nothing: RabbitMQ delivers it again, and its job id as `Nats-Msg-Id` makes
//! a second copy inside the duplicate window a no-op (later, the worker skips
//! a job whose row is already terminal).

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use futures::{StreamExt as _, TryStreamExt as _};
use gad_shared::envelope::{CONTENT_TYPE_MSGPACK, JobEnvelope, headers};
use gad_shared::job::kind_spec;
use gad_shared::metric_names::AMQP_BRIDGE_MESSAGES;
use gad_shared::topology::Topology;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::settings::AmqpBridgeSettings;

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("RabbitMQ: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("RabbitMQ: no connection within {0:?}")]
    ConnectTimeout(Duration),
    #[error("RabbitMQ closed the consumer")]
    Closed,
}

/// What the bridge needs of the JetStream side.
#[derive(Clone)]
pub struct Target {
    pub js: jetstream::Context,
    pub topology: Topology,
    /// Longest wait for a PubAck.
    pub publish_timeout: Duration,
}

/// Runs until `shutdown`, reconnecting after every failure; returns at once
/// when no `url` is configured.
pub async fn run(settings: AmqpBridgeSettings, target: Target, shutdown: CancellationToken) {
    let Some(url) = settings.url.clone() else {
        return;
    };
    while !shutdown.is_cancelled() {
        match session(&url, &settings, &target, &shutdown).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %e, "AMQP bridge interrupted; reconnecting"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(settings.retry_delay) => {}
        }
    }
}

/// One connection: declare, consume, forward. `Ok` only on shutdown, after
/// the messages in flight were forwarded (or handed back).
async fn session(
    url: &str,
    settings: &AmqpBridgeSettings,
    target: &Target,
    shutdown: &CancellationToken,
) -> Result<(), BridgeError> {
    let properties = ConnectionProperties::default().with_connection_name("gad-workers amqp bridge".into());
    let (connection, channel) = tokio::time::timeout(settings.connect_timeout, async {
        let connection = Connection::connect(url, properties).await?;
        let channel = connection.create_channel().await?;
        declare(&channel, settings).await?;
        channel.basic_qos(settings.prefetch, BasicQosOptions::default()).await?;
        Ok::<_, lapin::Error>((connection, channel))
    })
    .await
    .map_err(|_| BridgeError::ConnectTimeout(settings.connect_timeout))??;
    let consumer = channel
        .basic_consume(
            settings.queue.as_str().into(),
            format!("gad-bridge-{}", Uuid::new_v4()).into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(exchange = %settings.exchange, queue = %settings.queue, "AMQP bridge consuming");
    let retry_delay = settings.retry_delay;
    let consumed = consumer
        .take_until(shutdown.cancelled())
        .map_err(BridgeError::from)
        .try_for_each_concurrent(usize::from(settings.prefetch), |delivery| async move {
            forward(delivery, target, retry_delay, shutdown).await;
            Ok(())
        })
        .await;
    if shutdown.is_cancelled() {
        // Prefetched messages not yet forwarded go back to the queue here.
        let _ = connection.close(200, "shutdown".into()).await;
        return consumed;
    }
    consumed.and(Err(BridgeError::Closed))
}

/// The exchange, the quorum queue and the binding: idempotent, so every
/// replica declares them and whoever is first creates them.
async fn declare(channel: &Channel, settings: &AmqpBridgeSettings) -> Result<(), lapin::Error> {
    let durable_exchange = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            settings.exchange.as_str().into(),
            ExchangeKind::Topic,
            durable_exchange,
            FieldTable::default(),
        )
        .await?;
    let mut quorum = FieldTable::default();
    quorum.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    channel
        .queue_declare(settings.queue.as_str().into(), QueueDeclareOptions::durable(), quorum)
        .await?;
    channel
        .queue_bind(
            settings.queue.as_str().into(),
            settings.exchange.as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}

/// Publishes one message to `GAD_JOBS` and acknowledges it after the
/// PubAck. While JetStream does not take it, it is published again every
/// `retry_delay`, unacknowledged: the message keeps its prefetch slot, so
/// intake stops while NATS is away, and a crash meanwhile hands it back to
/// RabbitMQ. On shutdown it is left unacknowledged for the same reason.
async fn forward(mut delivery: Delivery, target: &Target, retry_delay: Duration, shutdown: &CancellationToken) {
    let content_type = delivery
        .properties
        .content_type()
        .as_ref()
        .map(|c| c.as_str().to_string());
    let route = route(
        &delivery.data,
        content_type.as_deref(),
        delivery.properties.message_id().as_ref().map(|m| m.as_str()),
        &target.topology,
    );
    let mut hdrs = HeaderMap::new();
    hdrs.insert(
        headers::CONTENT_TYPE,
        content_type.as_deref().unwrap_or(CONTENT_TYPE_MSGPACK),
    );
    if let Some(trace) = header_text(&delivery, headers::TRACEPARENT) {
        hdrs.insert(headers::TRACEPARENT, trace.as_str());
    }
    // Routed already: the body moves into the message, not copied.
    let payload = bytes::Bytes::from(std::mem::take(&mut delivery.data));
    let mut retried = false;
    let duplicate = loop {
        let message = PublishMessage::build()
            .payload(payload.clone())
            .headers(hdrs.clone())
            .message_id(route.job_id.as_str());
        let publish = async {
            let ack = target.js.send_publish(route.subject.clone(), message).await?;
            ack.await
        };
        let reason = match tokio::time::timeout(target.publish_timeout, publish).await {
            Ok(Ok(ack)) => break ack.duplicate,
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no PubAck within the timeout".to_string(),
        };
        tracing::debug!(job_id = %route.job_id, %reason, "bridge publish attempt failed");
        if !retried {
            tracing::warn!(job_id = %route.job_id, %reason, "bridged job not stored by JetStream; retrying");
            retried = true;
        }
        metrics::counter!(AMQP_BRIDGE_MESSAGES, "outcome" => "retried").increment(1);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(retry_delay) => {}
        }
    };
    tracing::debug!(job_id = %route.job_id, duplicate, retried, "bridged");
    if let Err(e) = delivery.ack(BasicAckOptions::default()).await {
        // RabbitMQ delivers it again; the stream drops the copy.
        tracing::warn!(job_id = %route.job_id, error = %e, "bridged job not acknowledged to RabbitMQ");
    }
    // A copy stored by an attempt whose PubAck was lost is ours, not a duplicate.
    let outcome = match (duplicate && !retried, route.known) {
        (true, _) => "duplicate",
        (false, true) => "forwarded",
        (false, false) => "unroutable",
    };
    metrics::counter!(AMQP_BRIDGE_MESSAGES, "outcome" => outcome).increment(1);
}

struct Route {
    subject: String,
    job_id: String,
    /// The envelope decoded and names a kind the pipeline runs.
    known: bool,
}

/// A decodable envelope goes to its kind's subject under its own job id.
/// Anything else goes to the import lane's unroutable subject, identified by
/// the AMQP message id or else by its bytes, so a redelivery still dedups.
fn route(data: &[u8], content_type: Option<&str>, message_id: Option<&str>, topology: &Topology) -> Route {
    let envelope = JobEnvelope::decode(data, content_type).ok();
    if let Some((env, spec)) = envelope.and_then(|e| kind_spec(&e.kind).map(|s| (e, s))) {
        return Route {
            subject: topology.job_subject(spec),
            job_id: env.job_id.to_string(),
            known: true,
        };
    }
    Route {
        subject: topology.unroutable_job_subject(),
        job_id: message_id
            .map(str::to_string)
            .unwrap_or_else(|| Uuid::new_v5(&BYTES_NAMESPACE, data).to_string()),
        known: false,
    }
}

/// Namespace of the ids given to unroutable messages without a message id.
const BYTES_NAMESPACE: Uuid = Uuid::from_u128(0x6761_645f_616d_7170_5f62_7269_6467_6501);

fn header_text(delivery: &Delivery, name: &str) -> Option<String> {
    let table = delivery.properties.headers().as_ref()?;
    match table.inner().get(name)? {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gad_shared::envelope::{self, ENVELOPE_VERSION};
    use gad_shared::settings::NatsSettings;

    fn topology() -> Topology {
        Topology::new(&NatsSettings::default())
    }

    #[test]
    fn an_envelope_goes_to_its_kinds_subject_under_its_job_id() -> anyhow::Result<()> {
        let env = JobEnvelope {
            v: ENVELOPE_VERSION,
            job_id: Uuid::now_v7(),
            kind: "import.noop".into(),
            submitted_by: None,
            submitted_at: chrono::Utc::now(),
            request_id: None,
            client: None,
            payload: serde_json::json!({}),
        };
        let r = route(&envelope::encode(&env)?, None, Some("ignored"), &topology());
        assert_eq!(r.subject, "gad.jobs.import.noop");
        assert_eq!(r.job_id, env.job_id.to_string());
        assert!(r.known);
        Ok(())
    }

    #[test]
    fn garbage_and_unknown_kinds_are_unroutable_with_a_stable_id() {
        let t = topology();
        let a = route(b"not an envelope", None, None, &t);
        let b = route(b"not an envelope", None, None, &t);
        assert_eq!(a.subject, "gad.jobs.import.unroutable");
        assert_eq!(a.job_id, b.job_id, "a redelivery must dedup");
        assert!(!a.known);
        let json = br#"{"v":1,"job_id":"01a21f2e-0000-7000-8000-000000000001","kind":"no.such",
            "submitted_by":null,"submitted_at":"2026-11-28T10:00:00Z","payload":{}}"#;
        let c = route(json, Some("application/json"), Some("m-1"), &t);
        assert_eq!(
            (c.subject.as_str(), c.job_id.as_str()),
            ("gad.jobs.import.unroutable", "m-1")
        );
    }
}
