//! Benchmark events onto `GAD_EVENTS`, exactly as the workers publish them
//! (msgpack `EventEnvelope`, content type, `Gad-Topics`, `Nats-Msg-Id`), each
//! stamped with its publish time; acknowledgements are awaited a bounded
//! number at a time.

use std::future::IntoFuture;

use anyhow::Context;
use async_nats::jetstream;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use gad_shared::envelope::{self, CONTENT_TYPE_MSGPACK, ENVELOPE_VERSION, EventEnvelope, headers};
use gad_shared::settings::NatsSettings;
use gad_shared::topology::Topology;
use serde_json::json;
use uuid::Uuid;

use crate::Args;
use crate::client::{SENT_FIELD, now_us};

/// What the benchmark events look like to the broadcaster.
const EVENT_TYPE: &str = "task_updated";

type Ack = BoxFuture<'static, Result<jetstream::publish::PublishAck, jetstream::context::PublishError>>;

pub struct Publisher {
    js: jetstream::Context,
    subject: String,
    topic: String,
    pad: String,
    max_acks: usize,
    acks: FuturesUnordered<Ack>,
    /// Events handed to the client (acknowledged or not yet).
    pub published: u64,
    /// Publishes refused or not acknowledged: never delivered.
    pub errors: u64,
}

impl Publisher {
    pub async fn connect(args: &Args) -> anyhow::Result<Self> {
        let nats = NatsSettings {
            url: args.nats_url.clone(),
            stream_prefix: args.stream_prefix.clone(),
            subject_prefix: args.subject_prefix.clone(),
            ..Default::default()
        };
        let client = async_nats::connect(&args.nats_url)
            .await
            .with_context(|| format!("connecting to NATS at {}", args.nats_url))?;
        let topology = Topology::new(&nats);
        let js = jetstream::new(client);
        js.get_stream(topology.events_stream())
            .await
            .with_context(|| format!("the events stream {} (are the services up?)", topology.events_stream()))?;
        Ok(Self {
            js,
            subject: topology.event_subject(EVENT_TYPE),
            topic: args.topic.clone(),
            pad: "x".repeat(args.pad_bytes),
            max_acks: args.max_acks.max(1),
            acks: FuturesUnordered::new(),
            published: 0,
            errors: 0,
        })
    }

    /// Events whose delivery can be expected: published and not refused.
    pub fn expected(&self) -> u64 {
        self.published - self.errors
    }

    /// Publishes one event, first waiting for an acknowledgement when
    /// `max_acks` are outstanding.
    pub async fn publish(&mut self) -> anyhow::Result<()> {
        while self.acks.len() >= self.max_acks {
            self.next_ack().await;
        }
        self.reap();
        let n = self.published;
        let event = EventEnvelope {
            v: ENVELOPE_VERSION,
            event_id: Uuid::now_v7(),
            event_type: EVENT_TYPE.into(),
            data: json!({
                SENT_FIELD: 0,
                "changed": ["descripcion"],
                "tarea": { "id": n, "codigo": format!("BENCH-{n:06}"), "descripcion": self.pad },
            }),
            timestamp: chrono::Utc::now(),
        };
        let mut hdrs = async_nats::HeaderMap::new();
        hdrs.insert(headers::CONTENT_TYPE, CONTENT_TYPE_MSGPACK);
        hdrs.insert(headers::TOPICS, self.topic.as_str());
        hdrs.insert(headers::MSG_ID, event.event_id.to_string().as_str());
        let mut event = event;
        // Stamped last, as close to the publish as possible.
        event.data[SENT_FIELD] = json!(now_us());
        let payload = envelope::encode(&event).context("encoding an event")?;
        self.published += 1;
        match self.js.publish_with_headers(self.subject.clone(), hdrs, payload).await {
            Ok(ack) => self.acks.push(ack.into_future()),
            Err(_) => self.errors += 1,
        }
        Ok(())
    }

    /// Counts acknowledgements that have already arrived.
    pub fn reap(&mut self) {
        use futures::FutureExt;
        while let Some(Some(r)) = self.acks.next().now_or_never() {
            self.errors += u64::from(r.is_err());
        }
    }

    async fn next_ack(&mut self) {
        if let Some(r) = self.acks.next().await {
            self.errors += u64::from(r.is_err());
        }
    }

    /// Waits for every outstanding acknowledgement.
    pub async fn flush(&mut self) {
        while !self.acks.is_empty() {
            self.next_ack().await;
        }
    }
}
