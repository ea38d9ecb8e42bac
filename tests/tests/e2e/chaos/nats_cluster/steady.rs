//! A steady load while the cluster is broken: task creations submitted at a
//! fixed rate (open loop: the next one does not wait for the last answer),
//! each answer recorded with the time it arrived, and the accepted rate
//! read back from that timeline.

use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::super::load::Submitter;

/// How one submission ended.
pub enum Outcome {
    /// 202: JetStream stored the job.
    Accepted(Uuid),
    /// Any other answer (503 while no stream leader answers).
    Refused,
    /// No answer (connection error, client timeout).
    Failed,
}

pub struct Steady {
    started: Instant,
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<Timeline>,
}

/// Width of the windows the accepted rate is measured over.
const WINDOW: Duration = Duration::from_millis(250);

impl Steady {
    /// Submits `per_second` task creations a second (codigos
    /// `<prefix>-<n>`) until stopped; at most `in_flight` unanswered at once,
    /// further ticks are counted as skipped rather than piled up.
    pub fn start(submit: Submitter, prefix: String, delegado: i64, per_second: u32, in_flight: usize) -> Self {
        let started = Instant::now();
        let stop = CancellationToken::new();
        let cancel = stop.clone();
        let handle = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(per_second)));
            tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
            let mut running = JoinSet::new();
            let mut timeline = Timeline::default();
            let mut n = 0u32;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tick.tick() => {}
                }
                while let Some(done) = running.try_join_next() {
                    timeline.record(done);
                }
                if running.len() >= in_flight {
                    timeline.skipped += 1;
                    continue;
                }
                let submit = submit.clone();
                let codigo = format!("{prefix}-{n:05}");
                n += 1;
                running.spawn(async move {
                    let outcome = match submit.task(&codigo, delegado).await {
                        Ok(Some(id)) => Outcome::Accepted(id),
                        Ok(None) => Outcome::Refused,
                        Err(_) => Outcome::Failed,
                    };
                    (started.elapsed(), outcome)
                });
            }
            // Answers still due count: a job accepted late is accepted.
            while let Some(done) = running.join_next().await {
                timeline.record(done);
            }
            timeline
        });
        Self { started, stop, handle }
    }

    /// Time since the load started (the timeline's clock).
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Stops submitting, waits for the answers due, returns the timeline.
    pub async fn stop(self) -> anyhow::Result<Timeline> {
        self.stop.cancel();
        Ok(self.handle.await?)
    }
}

#[derive(Default)]
pub struct Timeline {
    /// When each answer came (since the start), and what it was.
    pub answers: Vec<(Duration, Outcome)>,
    /// Ticks that found `in_flight` submissions unanswered.
    pub skipped: usize,
}

impl Timeline {
    fn record(&mut self, done: Result<(Duration, Outcome), tokio::task::JoinError>) {
        match done {
            Ok(answer) => self.answers.push(answer),
            Err(_) => self.answers.push((Duration::MAX, Outcome::Failed)),
        }
    }

    pub fn accepted(&self) -> Vec<Uuid> {
        self.answers
            .iter()
            .filter_map(|(_, o)| match o {
                Outcome::Accepted(id) => Some(*id),
                _ => None,
            })
            .collect()
    }

    pub fn count(&self, from: Duration, to: Duration, accepted: bool) -> usize {
        self.answers
            .iter()
            .filter(|(at, o)| *at >= from && *at < to && matches!(o, Outcome::Accepted(_)) == accepted)
            .count()
    }

    /// Accepted jobs per second over `[from, to)`.
    pub fn rate(&self, from: Duration, to: Duration) -> f64 {
        self.count(from, to, true) as f64 / (to - from).as_secs_f64()
    }

    /// Total time in `[from, to)` spent in windows whose accepted rate was
    /// below `floor` jobs/s, and the first and last such window's start.
    pub fn below(&self, from: Duration, to: Duration, floor: f64) -> (Duration, Option<(Duration, Duration)>) {
        let mut total = Duration::ZERO;
        let mut span: Option<(Duration, Duration)> = None;
        let mut at = from;
        while at + WINDOW <= to {
            if self.rate(at, at + WINDOW) < floor {
                total += WINDOW;
                span = Some(span.map_or((at, at), |(first, _)| (first, at)));
            }
            at += WINDOW;
        }
        (total, span)
    }

    /// One line per second: accepted, refused or failed answers.
    pub fn per_second(&self, until: Duration) -> String {
        let mut out = String::new();
        for s in 0..until.as_secs() {
            let (a, b) = (Duration::from_secs(s), Duration::from_secs(s + 1));
            let other = self.count(a, b, false);
            out.push_str(&format!(
                "  {s:>3} s  {:>4} accepted  {other:>4} refused/failed\n",
                self.count(a, b, true)
            ));
        }
        out
    }
}
