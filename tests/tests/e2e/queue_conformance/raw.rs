//! The queue itself, without workers.

use std::time::{Duration, Instant};

use gad_shared::queue::{Ack, Backend, PublishFailure};
use serde_json::json;

use super::{ACK_WAIT, Harness, on_both};

const NOOP: &str = "import.noop";

async fn a_confirmed_job_is_delivered_as_published(backend: Backend) -> anyhow::Result<()> {
    let h = Harness::new(backend, |_| {}).await?;
    let job = h.job(NOOP, json!({"n": 1}), Some(7))?;
    assert!(!h.publish(&job).await?, "a first publish is not a duplicate");
    let mut consumer = h.consumer("import").await?;
    let d = consumer.next(Duration::from_secs(5)).await?;
    assert_eq!(d.subject, job.subject);
    assert_eq!(d.payload, job.payload);
    assert_eq!(d.attempt, 1);
    assert_eq!(d.message_id, Some(job.record.job_id.to_string()));
    assert_eq!(d.header("Content-Type"), Some("application/msgpack"));
    d.settle(Ack::Ack).await?;
    assert!(
        consumer.next(Duration::from_millis(500)).await.is_err(),
        "an acknowledged job came back"
    );
    consumer.crash().await;
    h.stop().await
}
on_both!(a_confirmed_job_is_delivered_as_published);

/// A queue at its bound refuses with `QueueFull` (the 503 `queue_full` of
/// §6.4), never by dropping or by claiming the broker is away.
async fn a_full_queue_refuses_new_jobs(backend: Backend) -> anyhow::Result<()> {
    let h = Harness::new(backend, |iso| {
        iso.nats.jobs_max_bytes = 2048;
        iso.queue.rabbitmq.max_length = 3;
    })
    .await?;
    let (mut stored, mut refused) = (0, 0);
    for n in 0..20 {
        match h
            .publish(&h.job(NOOP, json!({ "n": n, "pad": "x".repeat(200) }), None)?)
            .await
        {
            Ok(_) => stored += 1,
            Err(PublishFailure::QueueFull) => refused += 1,
            Err(e) => anyhow::bail!("publish {n}: {e}"),
        }
    }
    assert!(stored >= 1 && refused >= 1, "stored {stored}, refused {refused}");
    h.stop().await
}
on_both!(a_full_queue_refuses_new_jobs);

async fn a_crashed_consumers_job_is_delivered_again(backend: Backend) -> anyhow::Result<()> {
    let h = Harness::new(backend, |_| {}).await?;
    let job = h.job(NOOP, json!({}), None)?;
    h.publish(&job).await?;
    let mut first = h.consumer("import").await?;
    let taken = first.next(Duration::from_secs(5)).await?;
    assert_eq!(taken.attempt, 1);
    first.crash().await;
    let mut second = h.consumer("import").await?;
    let again = second.next(ACK_WAIT + Duration::from_secs(5)).await?;
    assert_eq!(again.payload, job.payload);
    assert_eq!(again.attempt, 2, "the crashed delivery counts as an attempt");
    again.settle(Ack::Ack).await?;
    second.crash().await;
    h.stop().await
}
on_both!(a_crashed_consumers_job_is_delivered_again);

/// A delayed retry comes back no sooner than its delay allows (RabbitMQ
/// rounds down to its buckets: 500 ms here) and no later than the
/// redelivery after a crash would, counted as the next attempt.
async fn a_retry_waits_its_delay(backend: Backend) -> anyhow::Result<()> {
    let h = Harness::new(backend, |_| {}).await?;
    let job = h.job(NOOP, json!({}), None)?;
    h.publish(&job).await?;
    let mut consumer = h.consumer("import").await?;
    let d = consumer.next(Duration::from_secs(5)).await?;
    let naked = Instant::now();
    d.settle(Ack::Nak(Duration::from_millis(700))).await?;
    let again = consumer.next(Duration::from_secs(5)).await?;
    let waited = naked.elapsed();
    assert!(waited >= Duration::from_millis(450), "came back after {waited:?}");
    assert!(waited < ACK_WAIT + Duration::from_secs(1), "came back after {waited:?}");
    assert_eq!(again.attempt, 2);
    assert_eq!(again.subject, job.subject, "a retry keeps its subject");
    again.settle(Ack::Ack).await?;
    consumer.crash().await;
    h.stop().await
}
on_both!(a_retry_waits_its_delay);

/// What a worker does with jobs it will not run at shutdown: handed back,
/// they are delivered again at once rather than after an ack wait.
async fn a_handed_back_job_is_delivered_again_at_once(backend: Backend) -> anyhow::Result<()> {
    let h = Harness::new(backend, |_| {}).await?;
    h.publish(&h.job(NOOP, json!({}), None)?).await?;
    let mut consumer = h.consumer("import").await?;
    let d = consumer.next(Duration::from_secs(5)).await?;
    let handed = Instant::now();
    d.settle(Ack::Nak(Duration::ZERO)).await?;
    let again = consumer.next(Duration::from_secs(5)).await?;
    assert!(
        handed.elapsed() < ACK_WAIT / 2,
        "handed back after {:?}",
        handed.elapsed()
    );
    assert_eq!(again.attempt, 2);
    again.settle(Ack::Ack).await?;
    consumer.crash().await;
    h.stop().await
}
on_both!(a_handed_back_job_is_delivered_again_at_once);
