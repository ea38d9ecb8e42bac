//! One worker group's loop on RabbitMQ: a consumer on the lane's quorum
//! queue whose prefetch is this process' concurrency, so the broker never
//! hands it more jobs than it runs at once and a busy process leaves the
//! rest to its siblings.

use std::time::Duration;

use gad_shared::queue::rabbit::{RabbitConsumer, RabbitLink};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::consumer::spawn_job;
use crate::job_metrics::KindLabels;
use crate::process::WorkerContext;
use crate::settings::GroupSettings;

/// How often a consuming loop looks at the breaker.
const BREAKER_CHECK: Duration = Duration::from_millis(200);

enum Ended {
    Shutdown,
    /// PostgreSQL is away: stop taking jobs until the breaker closes.
    Breaker,
    Lost(String),
}

pub async fn run(
    ctx: WorkerContext,
    group: String,
    link: RabbitLink,
    settings: GroupSettings,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let kinds = KindLabels::new(&ctx.topology);
    let prefetch = u16::try_from(settings.concurrency).unwrap_or(u16::MAX);
    while !cancel.is_cancelled() {
        // While PostgreSQL is away nothing is taken: a job taken now would
        // only spend an attempt on the outage.
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = ctx.breaker.closed() => {}
        }
        let mut consumer = match RabbitConsumer::start(&link, &group, prefetch).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(%group, error = %e, "cannot consume; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        let mut breaker = tokio::time::interval(BREAKER_CHECK);
        let ended = loop {
            let next = tokio::select! {
                _ = cancel.cancelled() => break Ended::Shutdown,
                _ = breaker.tick() => {
                    if ctx.breaker.is_closed() { continue } else { break Ended::Breaker }
                }
                d = consumer.next() => d,
            };
            match next {
                Some(Ok(delivery)) => {
                    let kind = kinds.of(&delivery.subject);
                    // The job holds the channel open until it has settled
                    // on it (a channel closes with its last handle).
                    let channel = consumer.channel();
                    spawn_job(&ctx, &tracker, kind, delivery, channel, settings.deadline);
                }
                Some(Err(e)) => break Ended::Lost(e.to_string()),
                None => break Ended::Lost("consumer closed".into()),
            }
        };
        // Deliveries buffered but not started go back to the queue now, for
        // a sibling, instead of when this channel closes.
        drop(consumer.stop().await);
        match ended {
            Ended::Shutdown => break,
            Ended::Breaker => tracing::info!(%group, "database unavailable; not taking jobs"),
            Ended::Lost(reason) => {
                tracing::warn!(%group, %reason, "consumer lost; consuming again");
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    tracing::info!(%group, "stopped consuming");
}
