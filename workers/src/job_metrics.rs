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

use gad_shared::metric_names::{
    CONSUMER_ACK_PENDING as ACK_PENDING, JOB_DURATION as DURATION, JOB_QUEUE_DEPTH as QUEUE_DEPTH, JOBS_DEAD as DEAD,
    JOBS_FAILED as FAILED, JOBS_IN_FLIGHT as IN_FLIGHT, JOBS_RETRIED as RETRIED, JOBS_STARTED as STARTED,
    JOBS_SUCCEEDED as SUCCEEDED,
};

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
        self.by_subject
            .get(subject)
            .copied()
            .unwrap_or(gad_shared::metric_names::UNKNOWN_KIND)
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
    metrics::histogram!(DURATION, "kind" => kind, "status" => outcome).record(elapsed.as_secs_f64());
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
