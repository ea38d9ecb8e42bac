//! One worker group's loop: a durable pull consumer shared by every process
//! of the group, a semaphore bounding the jobs this process runs at once.
//! On RabbitMQ the lane's quorum queue plays the consumer's part
//! ([`crate::rabbit_consumer`]).

use std::sync::Arc;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use futures::{FutureExt, StreamExt};
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
    'reconnect: while !cancel.is_cancelled() {
        let messages = consumer
            .stream()
            .max_messages_per_batch(settings.concurrency)
            .heartbeat(std::time::Duration::from_secs(5))
            .expires(std::time::Duration::from_secs(30))
            .messages()
            .await;
        let mut messages = match messages {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(%group, error = %e, "cannot pull; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                }
            }
        };
        loop {
            // While PostgreSQL is away nothing is pulled: a job pulled now
            // would only spend an attempt on the outage.
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = ctx.breaker.closed() => {}
            }
            // The permit is taken before the next message is pulled, so a busy
            // process leaves jobs to its siblings instead of hoarding them.
            let permit = tokio::select! {
                _ = cancel.cancelled() => break,
                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            };
            // The breaker may have opened while this loop waited for a permit.
            if !ctx.breaker.is_closed() {
                drop(permit);
                continue;
            }
            let next = tokio::select! {
                _ = cancel.cancelled() => break,
                m = messages.next() => m,
            };
            match next {
                Some(Ok(msg)) => {
                    let kind = kinds.of(&msg.subject);
                    let delivery = Delivery::from_jetstream(msg);
                    spawn_job(&ctx, &tracker, kind, delivery, permit, settings.deadline);
                }
                Some(Err(e)) => tracing::warn!(%group, error = %e, "pull error"),
                None => continue 'reconnect,
            }
        }
        hand_back_unstarted(&group, &mut messages).await;
        break;
    }
    tracing::info!(%group, "stopped pulling");
}

/// Naks, without delay, the messages the client had already pulled into its
/// buffer but this process will not start, so a sibling runs them now rather
/// than after their ack wait. Only what is buffered already: waiting for more
/// would pull jobs (and the naked ones back) just to hand them back again.
async fn hand_back_unstarted(group: &str, messages: &mut pull::Stream) {
    let mut handed_back = 0u32;
    while let Some(Some(Ok(msg))) = messages.next().now_or_never() {
        match msg.ack_with(AckKind::Nak(None)).await {
            Ok(()) => handed_back += 1,
            Err(e) => {
                tracing::warn!(%group, error = %e, "unstarted job not handed back; redelivered after its ack wait")
            }
        }
    }
    if handed_back > 0 {
        tracing::info!(%group, handed_back, "unstarted jobs handed back");
    }
}
