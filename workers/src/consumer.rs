//! One worker group's loop: a durable pull consumer shared by every process
//! of the group, a semaphore bounding the jobs this process runs at once.
//! On RabbitMQ the lane's quorum queue plays the consumer's part
//! ([`crate::rabbit_consumer`]).

use std::sync::Arc;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
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
    if let Some(lane) = gad_shared::job::GROUPS.iter().find(|g| **g == group) {
        tracker.spawn(job_metrics::watch_pending(consumer.clone(), lane, cancel.clone()));
    }
    // Pulled but not started: at most `concurrency`, so a busy process
    // leaves jobs to its siblings instead of hoarding them; kept locally so
    // a permit that frees finds its next job without a round trip.
    let (pulled, waiting) = mpsc::channel(settings.concurrency);
    tracker.spawn(pull(
        ctx.clone(),
        group.clone(),
        consumer,
        settings,
        cancel.clone(),
        pulled,
        tracker.clone(),
    ));
    run_pulled(ctx, group, waiting, settings, cancel, tracker).await;
}

/// A pulled job and its place in the prefetch budget.
type Pulled = (async_nats::jetstream::Message, OwnedSemaphorePermit);

/// Asks for jobs while the prefetch budget allows, in requests of a
/// bounded life, each read on its own task.
async fn pull(
    ctx: WorkerContext,
    group: String,
    consumer: PullConsumer,
    settings: GroupSettings,
    cancel: CancellationToken,
    pulled: mpsc::Sender<Pulled>,
    tracker: TaskTracker,
) {
    let budget = Arc::new(Semaphore::new(settings.concurrency));
    while !cancel.is_cancelled() {
        // While PostgreSQL is away nothing is pulled: a job pulled now
        // would only spend an attempt on the outage.
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = ctx.breaker.closed() => {}
        }
        let first = tokio::select! {
            _ = cancel.cancelled() => break,
            p = budget.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let mut held = vec![first];
        // Under load the budget comes back one job at a time: a request
        // waits (briefly) to ask for half of it at once, rather than going
        // out once per job.
        let want = settings.concurrency.div_ceil(2);
        let gather_until = tokio::time::Instant::now() + GATHER;
        loop {
            while let Ok(p) = budget.clone().try_acquire_owned() {
                held.push(p);
            }
            if held.len() >= want {
                break;
            }
            let more = tokio::select! {
                _ = cancel.cancelled() => None,
                p = tokio::time::timeout_at(gather_until, budget.clone().acquire_owned()) => p.ok().and_then(Result::ok),
            };
            let Some(p) = more else { break };
            held.push(p);
        }
        let batch = consumer
            .batch()
            .max_messages(held.len())
            .expires(PULL_EXPIRES)
            .messages()
            .await;
        match batch {
            Ok(batch) => {
                let (group, cancel, pulled) = (group.clone(), cancel.clone(), pulled.clone());
                tracker.spawn(async move { read_batch(&group, batch, held, &pulled, &cancel).await });
            }
            Err(e) => {
                tracing::warn!(%group, error = %e, "cannot pull; retrying");
                drop(held);
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

/// One pull request, read to its end even when shutdown comes meanwhile: a
/// request left open would still deliver jobs after the process stopped
/// reading, and they would wait out their ack wait (a continuous pull keeps
/// one open all the time). Each job it brings takes one of `held`.
async fn read_batch(
    group: &str,
    mut batch: pull::Batch,
    mut held: Vec<OwnedSemaphorePermit>,
    pulled: &mpsc::Sender<Pulled>,
    cancel: &CancellationToken,
) {
    let ends = tokio::time::Instant::now() + PULL_EXPIRES + PULL_SLACK;
    while let Ok(Some(next)) = tokio::time::timeout_at(ends, batch.next()).await {
        match next {
            Ok(msg) => match held.pop() {
                Some(slot) if !cancel.is_cancelled() => {
                    if let Err(mpsc::error::SendError((msg, _))) = pulled.send((msg, slot)).await {
                        hand_back(group, &msg).await;
                    }
                }
                // At shutdown, or more than was asked for: to a sibling now.
                _ => hand_back(group, &msg).await,
            },
            Err(e) => tracing::warn!(%group, error = %e, "pull error"),
        }
    }
}

/// Starts pulled jobs as run permits free up; at shutdown hands back every
/// job pulled and not started, until the last request has ended.
async fn run_pulled(
    ctx: WorkerContext,
    group: String,
    mut waiting: mpsc::Receiver<Pulled>,
    settings: GroupSettings,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let permits = Arc::new(Semaphore::new(settings.concurrency));
    let kinds = KindLabels::new(&ctx.topology);
    loop {
        // The breaker may open while jobs wait here: they wait for it too.
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = ctx.breaker.closed() => {}
        }
        let permit = tokio::select! {
            _ = cancel.cancelled() => break,
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        if !ctx.breaker.is_closed() {
            continue;
        }
        let next = tokio::select! {
            _ = cancel.cancelled() => break,
            m = waiting.recv() => m,
        };
        let Some((msg, slot)) = next else { break };
        drop(slot);
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
    let mut handed_back = 0u32;
    while let Some((msg, _slot)) = waiting.recv().await {
        hand_back(&group, &msg).await;
        handed_back += 1;
    }
    if handed_back > 0 {
        tracing::info!(%group, handed_back, "unstarted jobs handed back");
    }
    tracing::info!(%group, "stopped pulling");
}

/// Naks, without delay, a job this process will not start, so a sibling
/// runs it now rather than after its ack wait.
async fn hand_back(group: &str, msg: &async_nats::jetstream::Message) {
    if let Err(e) = msg.ack_with(AckKind::Nak(None)).await {
        tracing::warn!(%group, error = %e, "unstarted job not handed back; redelivered after its ack wait");
    }
}

/// How long a loop under load waits to gather permits for one request.
const GATHER: std::time::Duration = std::time::Duration::from_millis(5);

/// Life of one pull request: how late shutdown may find one open, and how
/// often an idle lane asks again.
const PULL_EXPIRES: std::time::Duration = std::time::Duration::from_secs(1);
/// Past the request's life, the wait for the server's word that it ended.
const PULL_SLACK: std::time::Duration = std::time::Duration::from_millis(500);
