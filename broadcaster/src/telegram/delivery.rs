//! The delivery loop: two durable pull consumers on `GAD_NOTIFY`, shared by
//! every replica (the work queue hands each message to one of them), read
//! priority 0 first. A permit is taken before each pull, so this replica
//! never holds more messages than it is sending.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, Message};
use futures::StreamExt;
use gad_shared::topology::Topology;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::sender::Sender;

/// How long one pull on the priority-0 consumer waits when both are empty:
/// the longest a bulk message waits for this loop to look again.
const IDLE_PULL: Duration = Duration::from_millis(250);

pub struct Consumers {
    p0: PullConsumer,
    bulk: PullConsumer,
}

/// Binds (creating them if needed) the two durable consumers.
pub async fn consumers(
    js: &jetstream::Context,
    topology: &Topology,
    ack_wait: Duration,
) -> Result<Consumers, async_nats::Error> {
    let stream = js.get_stream(topology.notify_stream()).await?;
    let mut bound = Vec::with_capacity(2);
    for (name, filter) in [
        ("telegram_p0", topology.notify_p0_subject()),
        ("telegram_bulk", topology.notify_bulk_subject()),
    ] {
        let consumer = stream
            .get_or_create_consumer(
                name,
                pull::Config {
                    durable_name: Some(name.to_string()),
                    filter_subject: filter,
                    ack_policy: AckPolicy::Explicit,
                    ack_wait,
                    // Retries are paced by naks with delays for up to a day;
                    // the row, not a delivery count, decides when to give up.
                    max_deliver: -1,
                    max_ack_pending: 10_000,
                    ..Default::default()
                },
            )
            .await?;
        bound.push(consumer);
    }
    let bulk = bound.pop().ok_or("bulk consumer missing")?;
    let p0 = bound.pop().ok_or("p0 consumer missing")?;
    Ok(Consumers { p0, bulk })
}

pub async fn run(consumers: Consumers, sender: Arc<Sender>, concurrency: usize, cancel: CancellationToken) {
    tracing::info!(concurrency, "telegram delivery started");
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let sends = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            _ = cancel.cancelled() => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let message = tokio::select! {
            _ = cancel.cancelled() => break,
            m = next(&consumers) => m,
        };
        let Some(message) = message else {
            continue;
        };
        tracing::debug!(subject = %message.subject, "telegram delivery: message pulled");
        let sender = sender.clone();
        sends.spawn(async move {
            sender.deliver(message).await;
            drop(permit);
        });
    }
    // Sends in flight finish (each is bounded by the API timeout); messages
    // not yet pulled stay in the stream for the other replicas.
    sends.close();
    sends.wait().await;
}

/// One message, priority 0 first; `None` after an idle wait or an error.
async fn next(c: &Consumers) -> Option<Message> {
    if let Some(m) = pull(&c.p0, None).await {
        return Some(m);
    }
    if let Some(m) = pull(&c.bulk, None).await {
        return Some(m);
    }
    pull(&c.p0, Some(IDLE_PULL)).await
}

/// One message from `consumer`: at once (`wait` = `None`) or within `wait`.
async fn pull(consumer: &PullConsumer, wait: Option<Duration>) -> Option<Message> {
    let batch = match wait {
        None => consumer.fetch().max_messages(1).messages().await,
        Some(w) => consumer.batch().max_messages(1).expires(w).messages().await,
    };
    let mut batch = match batch {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "telegram delivery: pull failed");
            tokio::time::sleep(IDLE_PULL).await;
            return None;
        }
    };
    match batch.next().await {
        Some(Ok(m)) => Some(m),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "telegram delivery: pull failed");
            None
        }
        None => None,
    }
}
