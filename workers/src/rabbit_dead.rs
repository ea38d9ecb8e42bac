//! RabbitMQ's side of [`crate::max_deliveries`]: a copy of a job delivered
//! `delivery_limit` times without an acknowledgement (its worker crashed or
//! stalled each time) is dead-lettered by the quorum queue into
//! `<prefix>GAD_JOBS.dead`; every worker process consumes that queue and
//! moves each message to the dead-letter stream like any exhausted job. The
//! message is acknowledged only after the record and the row are written,
//! so a failure on the way leaves it in the queue for the next try.

use std::time::Duration;

use gad_shared::queue::rabbit::{ATTEMPTS_BEFORE, RabbitConsumer, RabbitLink};
use gad_shared::queue::{Ack, Delivery};
use tokio_util::sync::CancellationToken;

use crate::dead_letter::Original;
use crate::max_deliveries::dead_letter_undelivered;
use crate::process::WorkerContext;

/// One at a time: the queue only ever holds the rare crash-looping job.
const PREFETCH: u16 = 1;
const RETRY_AFTER: Duration = Duration::from_secs(5);

pub async fn run(ctx: WorkerContext, link: RabbitLink, cancel: CancellationToken) {
    let queue = link.names().dead();
    while !cancel.is_cancelled() {
        let mut consumer = match RabbitConsumer::start_on(&link, &queue, PREFETCH).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot consume the RabbitMQ dead-letter queue; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(RETRY_AFTER) => continue,
                }
            }
        };
        loop {
            let next = tokio::select! {
                _ = cancel.cancelled() => break,
                d = consumer.next() => d,
            };
            match next {
                Some(Ok(delivery)) => handle(&ctx, &link, delivery, &cancel).await,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "RabbitMQ dead-letter consumer lost");
                    break;
                }
                None => break,
            }
        }
        drop(consumer.stop().await);
    }
}

async fn handle(ctx: &WorkerContext, link: &RabbitLink, delivery: Delivery, cancel: &CancellationToken) {
    // The attempts before this copy, plus the deliveries the broker gave up after.
    let before: u32 = delivery
        .header(ATTEMPTS_BEFORE)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let attempts = before.saturating_add(link.settings().delivery_limit);
    match dead_letter_undelivered(ctx, Original::from(&delivery), attempts).await {
        Ok(outcome) => {
            tracing::warn!(subject = %delivery.subject, ?outcome, "job exceeded its RabbitMQ delivery limit");
            settle(&delivery, Ack::Ack).await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "job over its delivery limit not dead-lettered yet; retrying");
            // Back to the head of this queue after a pause: a delayed nak
            // would send it through a retry bucket to its lane, to run again.
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = tokio::time::sleep(RETRY_AFTER) => {}
            }
            settle(&delivery, Ack::Nak(Duration::ZERO)).await;
        }
    }
}

async fn settle(delivery: &Delivery, ack: Ack) {
    if let Err(e) = delivery.settle(ack).await {
        tracing::warn!(error = %e, "dead-letter queue message not settled; it comes back");
    }
}
