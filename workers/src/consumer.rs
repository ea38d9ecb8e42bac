//! One worker group's loop: a durable pull consumer shared by every process
//! of the group, a semaphore bounding the jobs this process runs at once.
//! On RabbitMQ the lane's quorum queue plays the consumer's part
//! ([`crate::rabbit_consumer`]).

use std::sync::Arc;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use gad_shared::queue::Delivery;
use gad_shared::queue::rabbit::RabbitLink;

use crate::job_metrics::{self, KindLabels};
use crate::process::{WorkerContext, process_one};
use crate::settings::GroupSettings;

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("binding consumer {group}: {source}")]
    Bind { group: String, source: async_nats::Error },
}

/// A group's place on the broker, bound at start.
pub enum Bound {
    JetStream(Box<PullConsumer>),
    RabbitMq(RabbitLink),
}

/// Creates (or updates) the group's durable consumer; on RabbitMQ the
/// lane's queue was declared when the link connected.
pub async fn bind(ctx: &WorkerContext, group: &str, settings: GroupSettings) -> Result<Bound, ConsumerError> {
    match &ctx.rabbit {
        Some(link) => Ok(Bound::RabbitMq(link.clone())),
        None => bind_jetstream(ctx, group, settings)
            .await
            .map(|c| Bound::JetStream(Box::new(c))),
    }
}

async fn bind_jetstream(
    ctx: &WorkerContext,
    group: &str,
    settings: GroupSettings,
) -> Result<PullConsumer, ConsumerError> {
    let err = |source: async_nats::Error| ConsumerError::Bind {
        group: group.to_string(),
        source,
    };
    let stream = ctx
        .js
        .get_stream(ctx.topology.jobs_stream())
        .await
        .map_err(|e| err(e.into()))?;
    let config = pull::Config {
        durable_name: Some(group.to_string()),
        filter_subject: ctx.topology.group_filter(group),
        ack_policy: AckPolicy::Explicit,
        deliver_policy: DeliverPolicy::All,
        ack_wait: settings.ack_wait,
        max_ack_pending: settings.max_ack_pending,
        // Our own attempt accounting dead-letters first; this is the backstop
        // for jobs whose worker crashed every time.
        max_deliver: 10,
        ..Default::default()
    };
    stream.create_consumer(config).await.map_err(|e| err(e.into()))
}

/// Runs the group's jobs until `cancel` fires; in-flight jobs are tracked by `tracker`.
pub async fn run(
    ctx: WorkerContext,
    group: String,
    bound: Bound,
    settings: GroupSettings,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    match bound {
        Bound::JetStream(consumer) => run_jetstream(ctx, group, *consumer, settings, cancel, tracker).await,
        Bound::RabbitMq(link) => crate::rabbit_consumer::run(ctx, group, link, settings, cancel, tracker).await,
    }
}

/// Runs one delivery on the tracker, holding `permit` until it is settled.
pub fn spawn_job<P: Send + 'static>(
    ctx: &WorkerContext,
    tracker: &TaskTracker,
    kind: &'static str,
    delivery: Delivery,
    permit: P,
    deadline: std::time::Duration,
) {
    let ctx = ctx.clone();
    tracker.spawn(async move {
        job_metrics::started(kind);
        let began = std::time::Instant::now();
        let processed = process_one(&ctx, delivery, deadline).await;
        job_metrics::finished(kind, processed, began.elapsed());
        drop(permit);
    });
}

async fn run_jetstream(
    ctx: WorkerContext,
    group: String,
    consumer: PullConsumer,
    settings: GroupSettings,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let permits = Arc::new(Semaphore::new(settings.concurrency));
    let kinds = KindLabels::new(&ctx.topology);
    if let Some(lane) = gad_shared::job::GROUPS.iter().find(|g| **g == group) {
        tracker.spawn(job_metrics::watch_pending(consumer.clone(), lane, cancel.clone()));
    }
    while !cancel.is_cancelled() {
        // While PostgreSQL is away nothing is pulled: a job pulled now
        // would only spend an attempt on the outage.
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = ctx.breaker.closed() => {}
        }
        // Permits are taken before jobs are asked for, and no more jobs
        // than permits: a busy process leaves jobs to its siblings instead
        // of hoarding them.
        let first = tokio::select! {
            _ = cancel.cancelled() => break,
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        // The breaker may have opened while this loop waited for a permit.
        if !ctx.breaker.is_closed() {
            drop(first);
            continue;
        }
        let mut held = vec![first];
        while let Ok(p) = permits.clone().try_acquire_owned() {
            held.push(p);
        }
        // One request of a bounded life, read to its end even when shutdown
        // comes meanwhile: a request left open would still deliver jobs
        // after the process stopped reading, and they would wait out their
        // ack wait (a continuous pull keeps one open all the time).
        let batch = consumer
            .batch()
            .max_messages(held.len())
            .expires(PULL_EXPIRES)
            .messages()
            .await;
        let mut batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(%group, error = %e, "cannot pull; retrying");
                drop(held);
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                }
            }
        };
        let mut handed_back = 0u32;
        let ends = tokio::time::Instant::now() + PULL_EXPIRES + PULL_SLACK;
        while let Ok(Some(next)) = tokio::time::timeout_at(ends, batch.next()).await {
            match next {
                Ok(msg) if cancel.is_cancelled() => {
                    // Not started: to a sibling now, not after the ack wait.
                    match msg.ack_with(AckKind::Nak(None)).await {
                        Ok(()) => handed_back += 1,
                        Err(e) => tracing::warn!(%group, error = %e, "unstarted job not handed back"),
                    }
                }
                Ok(msg) => {
                    let Some(permit) = held.pop() else {
                        // The server sent more than asked: never run past the bound.
                        let _ = msg.ack_with(AckKind::Nak(None)).await;
                        continue;
                    };
                    let kind = kinds.of(&msg.subject);
                    spawn_job(
                        &ctx,
                        &tracker,
                        kind,
                        Delivery::from_jetstream(msg),
                        permit,
                        settings.deadline,
                    );
                }
                Err(e) => tracing::warn!(%group, error = %e, "pull error"),
            }
        }
        if handed_back > 0 {
            tracing::info!(%group, handed_back, "unstarted jobs handed back");
        }
    }
    tracing::info!(%group, "stopped pulling");
}

/// Life of one pull request: how late shutdown may find one open, and how
/// often an idle lane asks again.
const PULL_EXPIRES: std::time::Duration = std::time::Duration::from_secs(1);
/// Past the request's life, the wait for the server's word that it ended.
const PULL_SLACK: std::time::Duration = std::time::Duration::from_millis(500);
