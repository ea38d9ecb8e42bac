//! Consumer lag of the worker groups, read one way for everyone who needs it:
//! ingress' admission control, the operators' view and the workers' gauges.

use std::time::Duration;

use async_nats::jetstream::consumer::Info;

use crate::job::GROUPS;
use crate::queue::Publisher;
use crate::queue::rabbit::RabbitLink;
use crate::topology::Topology;

/// One group's durable consumer, as JetStream counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lag {
    /// Not delivered yet.
    pub pending: u64,
    /// Delivered, not acknowledged yet.
    pub ack_pending: u64,
    pub redelivered: u64,
}

impl Lag {
    pub fn of(info: &Info) -> Self {
        Self {
            pending: info.num_pending,
            ack_pending: info.num_ack_pending as u64,
            redelivered: info.num_redelivered as u64,
        }
    }

    /// Work the group has not finished: what admission compares to its threshold.
    pub fn backlog(&self) -> u64 {
        self.pending + self.ack_pending
    }
}

/// Every group's lag on whichever broker carries the jobs. On JetStream: one
/// stream lookup, then one consumer-info request per group, each within
/// `timeout`; `None` when the stream cannot be read, and a group whose
/// consumer cannot be read (none bound yet, or a timeout) is `None` in the
/// list. On RabbitMQ: each lane queue's ready jobs (AMQP does not count the
/// unacknowledged ones, which the prefetch bounds anyway).
pub async fn read(
    publisher: &Publisher,
    topology: &Topology,
    timeout: Duration,
) -> Option<Vec<(&'static str, Option<Lag>)>> {
    let js = match publisher {
        Publisher::JetStream { js, .. } => js,
        Publisher::RabbitMq(link) => return rabbit(link, timeout).await,
    };
    let stream = match tokio::time::timeout(timeout, js.get_stream(topology.jobs_stream())).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "jobs stream unavailable for lag");
            return None;
        }
        Err(_) => return None,
    };
    let mut lags = Vec::with_capacity(GROUPS.len());
    for group in GROUPS {
        let info = tokio::time::timeout(timeout, stream.consumer_info(group)).await;
        lags.push((*group, info.ok().and_then(Result::ok).map(|i| Lag::of(&i))));
    }
    Some(lags)
}

/// Each lane queue's ready jobs, as a lag with nothing unacknowledged.
async fn rabbit(link: &RabbitLink, timeout: Duration) -> Option<Vec<(&'static str, Option<Lag>)>> {
    match tokio::time::timeout(timeout, link.depths()).await {
        Ok(Ok(depths)) => Some(
            depths
                .into_iter()
                .map(|(group, ready)| {
                    let lag = Lag {
                        pending: ready,
                        ack_pending: 0,
                        redelivered: 0,
                    };
                    (group, Some(lag))
                })
                .collect(),
        ),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "RabbitMQ queues unavailable for lag");
            None
        }
        Err(_) => None,
    }
}
