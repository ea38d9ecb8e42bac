//! The circuit breaker on PostgreSQL, one per worker process and shared by
//! every group it runs.
//!
//! Without it a database restart turns into burned attempts: every job
//! pulled while PostgreSQL is away fails, is retried with backoff, and after
//! `max_attempts` lands in the DLQ although nothing was wrong with it. So
//! after `failure_threshold` consecutive failures to reach the database the
//! breaker opens and the consumer loops stop pulling. After `cooldown` it is
//! half-open: a `SELECT 1` (not a job, so no attempt is spent) decides
//! between closing it and another cooldown.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::job_store::StoreError;
use crate::jobs::HandlerError;
use crate::row_batch::BatchError;
use crate::settings::BreakerSettings;

use gad_shared::metric_names::{BREAKER_OPENED as OPENED, BREAKER_STATE as STATE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    /// The probe is running; the loops keep waiting until it succeeds.
    HalfOpen,
}

impl BreakerState {
    fn gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::Open => 1.0,
            BreakerState::HalfOpen => 2.0,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

pub struct CircuitBreaker {
    settings: BreakerSettings,
    consecutive: AtomicU32,
    state: watch::Sender<BreakerState>,
}

impl CircuitBreaker {
    pub fn new(settings: BreakerSettings) -> Self {
        metrics::gauge!(STATE, "dependency" => "postgres").set(BreakerState::Closed.gauge());
        Self {
            settings,
            consecutive: AtomicU32::new(0),
            state: watch::Sender::new(BreakerState::Closed),
        }
    }

    pub fn state(&self) -> BreakerState {
        *self.state.borrow()
    }

    pub fn is_closed(&self) -> bool {
        self.state() == BreakerState::Closed
    }

    /// How long a job held back by an open breaker waits before redelivery.
    pub fn cooldown(&self) -> Duration {
        self.settings.cooldown
    }

    /// A database call succeeded: the streak ends. Only the probe closes an
    /// open breaker, because a straggler finishing after the outage began
    /// proves nothing about the database now.
    pub fn record_success(&self) {
        self.consecutive.store(0, Ordering::Relaxed);
    }

    /// A database call failed transiently.
    pub fn record_failure(&self) {
        let streak = self.consecutive.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        if streak >= self.settings.failure_threshold && self.set(BreakerState::Open, BreakerState::Closed) {
            metrics::counter!(OPENED, "dependency" => "postgres").increment(1);
            tracing::warn!(streak, "PostgreSQL breaker open; worker groups stop pulling");
        }
    }

    /// Returns once the breaker is closed (at once when it is).
    pub async fn closed(&self) {
        let mut rx = self.state.subscribe();
        // Only fails when the sender is gone, and `self` owns it.
        let _ = rx.wait_for(|s| *s == BreakerState::Closed).await;
    }

    /// Moves `from` → `to`; false when the state was not `from`.
    fn set(&self, to: BreakerState, from: BreakerState) -> bool {
        let changed = self.state.send_if_modified(|s| {
            if *s == from {
                *s = to;
                true
            } else {
                false
            }
        });
        if changed {
            metrics::gauge!(STATE, "dependency" => "postgres").set(to.gauge());
        }
        changed
    }

    /// Probes the database whenever the breaker is open, until `cancel` fires.
    pub async fn run_probe(&self, db: PgPool, cancel: CancellationToken) {
        let mut rx = self.state.subscribe();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = rx.wait_for(|s| *s == BreakerState::Open) => if r.is_err() { return },
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(self.settings.cooldown) => {}
            }
            self.set(BreakerState::HalfOpen, BreakerState::Open);
            let probe = tokio::time::timeout(self.settings.probe_timeout, sqlx::query("SELECT 1").execute(&db)).await;
            match probe {
                Ok(Ok(_)) => {
                    self.consecutive.store(0, Ordering::Relaxed);
                    self.set(BreakerState::Closed, BreakerState::HalfOpen);
                    tracing::warn!("PostgreSQL answers again; breaker closed, worker groups pull again");
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "breaker probe failed");
                    self.set(BreakerState::Open, BreakerState::HalfOpen);
                }
                Err(_) => {
                    tracing::debug!("breaker probe timed out");
                    self.set(BreakerState::Open, BreakerState::HalfOpen);
                }
            }
        }
    }
}

/// True for a handler failure that says the database is unreachable, not
/// that this job's query had bad luck (a deadlock, a serialization failure
/// or a statement timeout is retried, but does not open the breaker: one
/// unlucky job failing on its own must still reach `dead`).
pub fn database_unavailable(e: &HandlerError) -> bool {
    matches!(e, HandlerError::Database(d) if unreachable(d))
}

/// The same, for the job store's own writes.
pub fn store_unavailable(e: &StoreError) -> bool {
    match e {
        StoreError::Database(d) => unreachable(d),
        StoreError::Batch(BatchError::Db(d)) => unreachable(d),
        StoreError::Status(_) | StoreError::Event(_) | StoreError::Batch(BatchError::Stopped) => false,
    }
}

/// No connection, or the server refusing work: 08 connection exceptions,
/// 53 insufficient resources, 57P01-03 shutting down or starting up.
pub fn unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("53") || c.starts_with("57P0")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32) -> CircuitBreaker {
        CircuitBreaker::new(BreakerSettings {
            failure_threshold: threshold,
            cooldown: Duration::from_millis(10),
            probe_timeout: Duration::from_millis(100),
        })
    }

    #[test]
    fn opens_after_the_threshold_of_consecutive_failures_only() {
        let b = breaker(3);
        b.record_failure();
        b.record_failure();
        b.record_success();
        b.record_failure();
        b.record_failure();
        assert!(b.is_closed(), "a success resets the streak");
        b.record_failure();
        assert_eq!(b.state(), BreakerState::Open);
        b.record_success();
        assert_eq!(b.state(), BreakerState::Open, "only the probe closes it");
    }

    #[tokio::test]
    async fn a_waiting_loop_resumes_when_the_breaker_closes() {
        let b = std::sync::Arc::new(breaker(1));
        b.record_failure();
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.closed().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "waits while open");
        assert!(b.set(BreakerState::HalfOpen, BreakerState::Open));
        assert!(b.set(BreakerState::Closed, BreakerState::HalfOpen));
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .map_err(|_| "still waiting")
            .and_then(|r| r.map_err(|_| "panicked"))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn only_transient_database_errors_count() {
        assert!(database_unavailable(&HandlerError::Database(sqlx::Error::PoolTimedOut)));
        assert!(!database_unavailable(&HandlerError::Database(sqlx::Error::RowNotFound)));
        assert!(!database_unavailable(&HandlerError::Deadline));
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(database_unavailable(&HandlerError::Database(sqlx::Error::Io(io))));
        assert!(store_unavailable(&StoreError::Database(sqlx::Error::PoolTimedOut)));
        assert!(!store_unavailable(&StoreError::Status("nats".into())));
    }
}
