//! Publishing prepared jobs with many acknowledgements in flight, at most
//! `capacity` rows at once. Each row is published (JetStream async publish,
//! its PubAck awaited within the publish timeout) and, when asked, its
//! `queued` status is created beside it, as ingress does. A row NATS refuses is retried with
//! backoff before the import gives up on it; re-sending is safe, because the
//! job id is the message id.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_nats::jetstream::kv;
use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use gad_shared::queue::{self, PublishFailure};
use gad_shared::submit::{Prepared, SubmitError};

/// Attempts per row before the import stops (NATS away, or the stream full
/// for longer than the backoff waits: about 8 s in all).
const ATTEMPTS: u32 = 6;
const BACKOFF_BASE: Duration = Duration::from_millis(250);

/// A row's publish, finished.
#[derive(Debug)]
pub struct Published {
    /// Its [`super::watermark::Watermark`] sequence number.
    pub seq: u64,
    pub line: u64,
    /// Acknowledged: whether JetStream had the message id already (a duplicate).
    pub result: Result<bool, SubmitError>,
}

type InFlight = Pin<Box<dyn Future<Output = Published> + Send>>;

pub struct Publisher {
    queue: queue::Publisher,
    /// Where `queued` statuses go; none = not written.
    status: Option<kv::Store>,
    timeout: Duration,
    capacity: usize,
    in_flight: FuturesUnordered<InFlight>,
}

impl Publisher {
    /// `timeout`: the longest wait for one PubAck or status write (`nats.publish_timeout`).
    pub fn new(queue: queue::Publisher, status: Option<kv::Store>, timeout: Duration, capacity: usize) -> Self {
        Self {
            queue,
            status,
            timeout,
            capacity: capacity.max(1),
            in_flight: FuturesUnordered::new(),
        }
    }

    pub fn is_full(&self) -> bool {
        self.in_flight.len() >= self.capacity
    }

    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Starts publishing `job` (it is sent when next polled, by [`Publisher::next`]
    /// or [`Publisher::ready`]).
    pub fn push(&mut self, seq: u64, line: u64, job: Prepared) {
        let (queue, status, timeout) = (self.queue.clone(), self.status.clone(), self.timeout);
        self.in_flight.push(Box::pin(async move {
            Published {
                seq,
                line,
                result: publish(&queue, &status, timeout, job).await,
            }
        }));
    }

    /// The next row to finish; `None` when none is in flight.
    pub async fn next(&mut self) -> Option<Published> {
        self.in_flight.next().await
    }

    /// A row finished already, without waiting (this also sends rows pushed
    /// since the last poll).
    pub fn ready(&mut self) -> Option<Published> {
        self.in_flight.next().now_or_never().flatten()
    }
}

async fn publish(
    queue: &queue::Publisher,
    status: &Option<kv::Store>,
    timeout: Duration,
    job: Prepared,
) -> Result<bool, SubmitError> {
    let Some(status) = status else {
        return publish_with_retries(queue, &job).await;
    };
    let key = job.record.job_id.to_string();
    let value = job.status()?;
    // `create` never overwrites: on a re-run the status a worker wrote stays.
    let queued = async {
        match tokio::time::timeout(timeout, status.create(&key, value)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!(job_id = %key, error = %e, "queued status not recorded"),
            Err(_) => tracing::debug!(job_id = %key, "queued status not recorded in time"),
        }
    };
    let (published, ()) = tokio::join!(publish_with_retries(queue, &job), queued);
    if published.is_err() {
        // As ingress does: no `queued` status for a job that was not accepted.
        let _ = tokio::time::timeout(timeout, status.delete(&key)).await;
    }
    published
}

/// Publishes `job` until the broker confirms it (each try within the
/// publish timeout); whether it was a duplicate. A try that got no answer
/// may still have been stored: when a retry is then reported a duplicate,
/// it is this run's own message, not an earlier run's, and counts as published.
async fn publish_with_retries(queue: &queue::Publisher, job: &Prepared) -> Result<bool, SubmitError> {
    let mut attempt = 1;
    let mut unanswered = false;
    let id = job.record.job_id.to_string();
    loop {
        let error = match queue.publish(&job.subject, &job.headers, &job.payload, &id).await {
            Ok(duplicate) => return Ok(duplicate && !unanswered),
            Err(e) => {
                unanswered |= matches!(e, PublishFailure::Unavailable(_));
                SubmitError::from(e)
            }
        };
        if attempt >= ATTEMPTS {
            return Err(error);
        }
        tracing::debug!(job_id = %job.record.job_id, attempt, error = %error, "publish failed; retrying");
        tokio::time::sleep(BACKOFF_BASE * 2u32.pow(attempt - 1)).await;
        attempt += 1;
    }
}
