//! Admission control (§6.4): a lane whose backlog is over its threshold
//! refuses new jobs with 503 `queue_full` and records nothing, so a burst
//! turns into quick refusals instead of jobs that would wait past any
//! client's patience. The backlog is read from each group's consumer in the
//! background: asking JetStream on every request would cost more than the
//! request itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gad_shared::queue::Publisher;
use gad_shared::topology::Topology;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionSettings {
    /// Jobs waiting in one lane (pending + unacknowledged) above which its
    /// new jobs are refused; per group, `default_max_backlog` for the rest.
    pub max_backlog: HashMap<String, u64>,
    pub default_max_backlog: u64,
    /// How often each lane's backlog is read.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Longest wait for one consumer-info answer.
    #[serde(with = "humantime_serde")]
    pub poll_timeout: Duration,
}

impl Default for AdmissionSettings {
    fn default() -> Self {
        Self {
            max_backlog: HashMap::new(),
            default_max_backlog: 200_000,
            poll_interval: Duration::from_millis(500),
            poll_timeout: Duration::from_secs(1),
        }
    }
}

/// The last backlog read per lane, with its threshold; before the first
/// reading a lane admits.
#[derive(Clone, Default)]
pub struct Admission {
    lanes: Arc<HashMap<&'static str, (AtomicU64, u64)>>,
}

impl Admission {
    pub fn new(settings: &AdmissionSettings) -> Self {
        let lanes = gad_shared::job::GROUPS
            .iter()
            .map(|g| {
                let max = settings
                    .max_backlog
                    .get(*g)
                    .copied()
                    .unwrap_or(settings.default_max_backlog);
                (*g, (AtomicU64::new(0), max))
            })
            .collect();
        Self { lanes: Arc::new(lanes) }
    }

    /// Whether `lane` takes new jobs.
    pub fn admits(&self, lane: &str) -> bool {
        self.lanes
            .get(lane)
            .is_none_or(|(backlog, max)| backlog.load(Ordering::Relaxed) < *max)
    }

    fn record(&self, lane: &str, backlog: u64) {
        if let Some((b, _)) = self.lanes.get(lane) {
            b.store(backlog, Ordering::Relaxed);
        }
    }

    /// Reads every lane's consumer until `cancel` fires. A lane without a
    /// consumer yet (no worker ever started) has no backlog to speak of.
    pub fn follow(
        &self,
        publisher: Publisher,
        topology: Topology,
        settings: &AdmissionSettings,
        cancel: CancellationToken,
        tracker: &TaskTracker,
    ) {
        let me = self.clone();
        let (interval, timeout) = (settings.poll_interval, settings.poll_timeout);
        tracker.spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tick.tick() => {}
                }
                if let Some(lags) = gad_shared::lag::read(&publisher, &topology, timeout).await {
                    for (lane, lag) in lags {
                        if let Some(lag) = lag {
                            me.record(lane, lag.backlog());
                        }
                    }
                }
            }
        });
    }
}
