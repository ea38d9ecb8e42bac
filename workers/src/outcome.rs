//! The one place where a job's outcome becomes an acknowledgement.

use std::time::Duration;

use gad_shared::job::{JobError, JobResult, JobStatus};

use crate::backoff::full_jitter;

/// What a handler run amounted to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded(JobResult),
    /// Deterministic business outcome (404, 409, 422…): never retried.
    Failed(JobError),
    /// Might succeed later (connection lost, timeout, deadlock…).
    Transient {
        error: JobError,
        retry_after: Option<Duration>,
        /// The retry must come no later than this from now, whatever the
        /// policy says: a job with a deadline of its own (an emergency's 30 s)
        /// is otherwise redelivered after it stopped mattering.
        not_after: Option<Duration>,
    },
    /// Cancelled by a user before or while running.
    Cancelled,
    /// The process gave up on it at shutdown, after its grace period: says
    /// nothing about the job, which goes back to the queue for a sibling now
    /// rather than after the ack wait.
    Interrupted,
}

/// The acknowledgement to send for a message, on either broker.
pub use gad_shared::queue::Ack;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base: Duration,
    pub cap: Duration,
}

/// The job's next status and the acknowledgement, for delivery `attempt` of `max_attempts`.
pub fn settle(outcome: &Outcome, attempt: u32, max_attempts: u32, policy: RetryPolicy) -> (JobStatus, Ack) {
    match outcome {
        Outcome::Succeeded(_) => (JobStatus::Succeeded, Ack::Ack),
        Outcome::Failed(_) => (JobStatus::Failed, Ack::Ack),
        Outcome::Cancelled => (JobStatus::Cancelled, Ack::Ack),
        Outcome::Interrupted => (JobStatus::Queued, Ack::Nak(Duration::ZERO)),
        Outcome::Transient { .. } if attempt >= max_attempts => (JobStatus::Dead, Ack::Term),
        Outcome::Transient {
            retry_after, not_after, ..
        } => {
            let delay = retry_after.unwrap_or_else(|| full_jitter(attempt, policy.base, policy.cap));
            let delay = not_after.map_or(delay, |limit| delay.min(limit));
            (JobStatus::Queued, Ack::Nak(delay))
        }
    }
}

/// A failure of the database while its breaker is open says nothing about
/// the job: it waits out the breaker's cooldown and never moves toward
/// `dead`, so a database restart dead-letters nothing.
pub fn hold_for_breaker(cooldown: Duration) -> (JobStatus, Ack) {
    (JobStatus::Queued, Ack::Nak(cooldown))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err() -> JobError {
        JobError {
            http_status: 503,
            error: "dependency_unavailable".into(),
            message: "db".into(),
            details: None,
        }
    }
    const P: RetryPolicy = RetryPolicy {
        base: Duration::from_secs(1),
        cap: Duration::from_secs(300),
    };

    #[test]
    fn each_outcome_maps_to_its_acknowledgement() {
        let ok = Outcome::Succeeded(JobResult {
            http_status: 200,
            body: serde_json::json!({}),
        });
        assert_eq!(settle(&ok, 1, 5, P), (JobStatus::Succeeded, Ack::Ack));
        assert_eq!(settle(&Outcome::Failed(err()), 1, 5, P), (JobStatus::Failed, Ack::Ack));
        assert_eq!(settle(&Outcome::Cancelled, 1, 5, P), (JobStatus::Cancelled, Ack::Ack));
        // Even on its last attempt: a shutdown is not the job's failure.
        assert_eq!(
            settle(&Outcome::Interrupted, 5, 5, P),
            (JobStatus::Queued, Ack::Nak(Duration::ZERO))
        );
        let t = Outcome::Transient {
            error: err(),
            retry_after: Some(Duration::from_secs(3)),
            not_after: None,
        };
        assert_eq!(
            settle(&t, 2, 5, P),
            (JobStatus::Queued, Ack::Nak(Duration::from_secs(3)))
        );
        assert_eq!(settle(&t, 5, 5, P), (JobStatus::Dead, Ack::Term));
        let t = Outcome::Transient {
            error: err(),
            retry_after: None,
            not_after: None,
        };
        assert!(matches!(settle(&t, 3, 5, P), (JobStatus::Queued, Ack::Nak(d)) if d <= Duration::from_secs(4)));
    }

    #[test]
    fn a_retry_never_comes_later_than_the_jobs_own_limit() {
        let limit = Duration::from_millis(1500);
        for retry_after in [None, Some(Duration::from_secs(60))] {
            let t = Outcome::Transient {
                error: err(),
                retry_after,
                not_after: Some(limit),
            };
            for attempt in 1..8 {
                let (status, ack) = settle(&t, attempt, 8, P);
                assert_eq!(status, JobStatus::Queued);
                assert!(matches!(ack, Ack::Nak(d) if d <= limit), "attempt {attempt}: {ack:?}");
            }
        }
    }
}
