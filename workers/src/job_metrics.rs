//! The workers' per-kind metrics, named in one place (style.md,
//! "Observability"): how many jobs started and how each ended, how long
//! they ran, how many run now, and how far each group's consumer is behind.
//! Labels are bounded: the kind from the kinds table (`unknown` otherwise),
//! the group from the groups table.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use gad_shared::job::{JobStatus, KINDS};
use gad_shared::topology::Topology;
use tokio_util::sync::CancellationToken;

use crate::process::Processed;

pub const STARTED: &str = "gad_jobs_started_total";
pub const SUCCEEDED: &str = "gad_jobs_succeeded_total";
pub const FAILED: &str = "gad_jobs_failed_total";
pub const RETRIED: &str = "gad_jobs_retried_total";
pub const DEAD: &str = "gad_jobs_dead_total";
pub const IN_FLIGHT: &str = "gad_jobs_in_flight";
pub const DURATION: &str = "gad_job_run_duration_seconds";
/// Messages of a group not yet delivered (§6.5 names it; lane = group).
pub const QUEUE_DEPTH: &str = "job_queue_depth";
/// Messages delivered and not yet acknowledged, per group.
pub const ACK_PENDING: &str = "gad_consumer_ack_pending";

/// How often each group's consumer is asked for its pending count.
const PENDING_EVERY: Duration = Duration::from_secs(5);

/// Maps a job subject back to its kind without decoding the payload, so a
/// delivery is counted even when its payload turns out to be undecodable.
#[derive(Clone)]
pub struct KindLabels {
    by_subject: std::sync::Arc<HashMap<String, &'static str>>,
}

impl KindLabels {
    pub fn new(topology: &Topology) -> Self {
        let by_subject = KINDS.iter().map(|k| (topology.job_subject(k), k.name)).collect();
        Self {
            by_subject: std::sync::Arc::new(by_subject),
        }
    }

    pub fn of(&self, subject: &str) -> &'static str {
        self.by_subject.get(subject).copied().unwrap_or("unknown")
    }
}

pub fn started(kind: &'static str) {
    metrics::counter!(STARTED, "kind" => kind).increment(1);
    metrics::gauge!(IN_FLIGHT, "kind" => kind).increment(1.0);
}

pub fn finished(kind: &'static str, processed: Processed, elapsed: Duration) {
    metrics::gauge!(IN_FLIGHT, "kind" => kind).decrement(1.0);
    let (counter, outcome) = match processed {
        Processed::Settled(JobStatus::Succeeded) => (Some(SUCCEEDED), "succeeded"),
        Processed::Settled(JobStatus::Failed) => (Some(FAILED), "failed"),
        Processed::Settled(JobStatus::Dead) | Processed::Undecodable => (Some(DEAD), "dead"),
        Processed::Settled(JobStatus::Queued | JobStatus::Running) | Processed::Retried => (Some(RETRIED), "retried"),
        Processed::Settled(JobStatus::Cancelled) => (None, "cancelled"),
        Processed::Skipped => (None, "skipped"),
    };
    if let Some(name) = counter {
        metrics::counter!(name, "kind" => kind).increment(1);
    }
    metrics::histogram!(DURATION, "kind" => kind, "outcome" => outcome).record(elapsed.as_secs_f64());
}

/// Publishes the group's consumer lag until `cancel` fires. A failed read
/// leaves the last figure in place: the next one corrects it.
pub async fn watch_pending(mut consumer: PullConsumer, group: &'static str, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(PENDING_EVERY);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        match consumer.info().await {
            Ok(info) => {
                let lag = gad_shared::lag::Lag::of(info);
                metrics::gauge!(QUEUE_DEPTH, "lane" => group).set(lag.pending as f64);
                metrics::gauge!(ACK_PENDING, "lane" => group).set(lag.ack_pending as f64);
            }
            Err(e) => tracing::debug!(group, error = %e, "consumer info unavailable"),
        }
    }
}
