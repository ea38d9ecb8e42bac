//! This node's reading of `GAD_EVENTS`: every replica reads every event (an
//! ordered consumer starting after the stream's last message at start-up)
//! and hands it to its own hub, which keeps it for resumes and delivers it.

use std::sync::Arc;
use std::time::Instant;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::{self, consumer::Consumer};
use futures::StreamExt;
use gad_shared::envelope::{self, EventEnvelope, headers};
use gad_shared::otlp::{self, Hop, HopSpan};
use gad_shared::topology::Topology;
use gad_shared::trace_context::TraceParent;
use tokio_util::sync::CancellationToken;

use crate::history::StoredEvent;
use crate::hub::Hub;

/// Creates the consumer now, so events published after start-up are not
/// missed. Returns it with the sequence it starts after: the node's history
/// holds every event above that one.
pub async fn subscribe(
    js: &jetstream::Context,
    topology: &Topology,
) -> Result<(Consumer<pull::OrderedConfig>, u64), async_nats::Error> {
    let mut stream = js.get_stream(topology.events_stream()).await?;
    let start = stream.info().await?.state.last_sequence;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: topology.events_filter(),
            // An explicit start (rather than "new") makes the history's
            // starting point exact.
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: start + 1,
            },
            ..Default::default()
        })
        .await?;
    Ok((consumer, start))
}

/// The topics of an event, from its header.
pub fn topics(msg: &async_nats::Message) -> Vec<&str> {
    msg.headers
        .as_ref()
        .and_then(|h| h.get(headers::TOPICS))
        .map(|v| v.as_str().split(',').map(str::trim).filter(|t| !t.is_empty()).collect())
        .unwrap_or_default()
}

/// An event as stored and delivered; `None` (logged) when undecodable.
pub fn stored(msg: &async_nats::Message, seq: u64) -> Option<StoredEvent> {
    let event: EventEnvelope = match envelope::decode(&msg.payload, None) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, seq, "undecodable event skipped");
            return None;
        }
    };
    // Commit (or publish) to this node's fan-out: the relay's and the
    // stream's share of a job's finish→delivered time.
    let lag = (chrono::Utc::now() - event.timestamp).to_std().unwrap_or_default();
    metrics::histogram!(gad_shared::metric_names::WS_EVENT_LAG).record(lag.as_secs_f64());
    Some(StoredEvent::new(seq, &event, &topics(msg), Instant::now()))
}

pub async fn run(consumer: Consumer<pull::OrderedConfig>, hub: Hub, cancel: CancellationToken) {
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
        if let Some(event) = stored(&msg, seq) {
            let event_id = event.message_id;
            let exported = export_delivery(&msg);
            let delivered = hub.publish(Arc::new(event));
            if let Some(mut span) = exported {
                span.set("gad.ws.delivered", delivered as i64);
                span.end(None);
            }
            metrics::counter!(gad_shared::metric_names::WS_BROADCASTS).increment(1);
            // One line per event (not per delivery), joined to the job's
            // trace when the event carries one; the header is parsed only
            // when the line is written (this loop runs for every event).
            if tracing::enabled!(tracing::Level::DEBUG) {
                let trace_id = msg
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(headers::TRACEPARENT))
                    .and_then(|v| TraceParent::parse(v.as_str()))
                    .map(|t| t.trace_id());
                tracing::debug!(seq, %event_id, subject = %msg.subject, delivered, trace_id = trace_id.as_deref().unwrap_or(""), "event delivered");
            }
        }
    }
}

/// The fan-out of one event as a span of its job's trace, when spans are
/// exported (the header is not parsed otherwise: this runs for every event).
fn export_delivery(msg: &jetstream::Message) -> Option<HopSpan> {
    if !otlp::enabled() {
        return None;
    }
    let parent = msg
        .headers
        .as_ref()
        .and_then(|h| h.get(headers::TRACEPARENT))
        .and_then(|v| TraceParent::parse(v.as_str()));
    let own = parent.map_or_else(TraceParent::root, |p| p.child());
    Some(HopSpan::start(Hop::Delivery, own, parent, || {
        vec![otlp::attribute("messaging.destination.name", msg.subject.to_string())]
    }))
}
