//! One path through the tarea state machine (domain.md §3) per seeded tarea:
//! the schedule, the real timestamps and one historial step per transition.
//!
//! Transitions are applied the way the jobs apply them (`start` sets
//! inicio_real, `resume` adds the closed pause to tiempo_pausado, …), so the
//! columns and the history agree by construction and satisfy every §2.3 check.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::shares::{between, secs};

const MIN: i64 = 60;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;
/// Share of running, paused and finished tareas that went through an extra
/// pause and resume.
const PAUSED_BEFORE: f64 = 0.3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Estado {
    Programada,
    EnCurso,
    Pausada,
    Finalizada,
    Cancelada,
}

impl Estado {
    pub fn label(self) -> &'static str {
        match self {
            Estado::Programada => "programada",
            Estado::EnCurso => "en_curso",
            Estado::Pausada => "pausada",
            Estado::Finalizada => "finalizada",
            Estado::Cancelada => "cancelada",
        }
    }

    /// The states in which assignees are held (release rule, §3).
    pub fn holds_units(self) -> bool {
        matches!(self, Estado::EnCurso | Estado::Pausada)
    }

    pub fn is_active(self) -> bool {
        matches!(self, Estado::Programada | Estado::EnCurso | Estado::Pausada)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Create,
    Start,
    Pause,
    Resume,
    Finish,
    Cancel,
}

pub(crate) struct Step {
    pub action: Action,
    pub from: Option<Estado>,
    pub to: Estado,
    pub at: i64,
}

pub(crate) struct Timeline {
    pub estado: Estado,
    pub created_at: i64,
    pub inicio_programado: i64,
    pub inicio_real: Option<i64>,
    pub fin_real: Option<i64>,
    pub pausado_en: Option<i64>,
    /// Seconds of closed pauses.
    pub tiempo_pausado: i64,
    pub steps: Vec<Step>,
}

impl Timeline {
    /// The time of the last transition, which is when the row last changed.
    pub fn updated_at(&self) -> i64 {
        self.steps.last().map_or(self.created_at, |s| s.at)
    }

    fn new(created_at: i64, inicio_programado: i64) -> Self {
        let mut t = Self {
            estado: Estado::Programada,
            created_at,
            inicio_programado,
            inicio_real: None,
            fin_real: None,
            pausado_en: None,
            tiempo_pausado: 0,
            steps: Vec::with_capacity(5),
        };
        t.steps.push(Step {
            action: Action::Create,
            from: None,
            to: Estado::Programada,
            at: created_at,
        });
        t
    }

    /// Records a transition at `at`, nudged to strictly after the previous one
    /// so the history has one unambiguous order.
    fn go(&mut self, action: Action, to: Estado, at: i64) -> i64 {
        let at = at.max(self.updated_at() + 1);
        self.steps.push(Step {
            action,
            from: Some(self.estado),
            to,
            at,
        });
        self.estado = to;
        at
    }

    fn start(&mut self, at: i64) -> i64 {
        let at = self.go(Action::Start, Estado::EnCurso, at);
        self.inicio_real = Some(at);
        at
    }

    fn pause(&mut self, at: i64) -> i64 {
        let at = self.go(Action::Pause, Estado::Pausada, at);
        self.pausado_en = Some(at);
        at
    }

    fn close_pause(&mut self, at: i64) {
        if let Some(p) = self.pausado_en.take() {
            self.tiempo_pausado += at - p;
        }
    }

    fn resume(&mut self, at: i64) -> i64 {
        let at = self.go(Action::Resume, Estado::EnCurso, at);
        self.close_pause(at);
        at
    }

    fn finish(&mut self, at: i64) -> i64 {
        let at = self.go(Action::Finish, Estado::Finalizada, at);
        self.fin_real = Some(at);
        at
    }

    /// From pausada the open pause is closed first; fin_real stays NULL (§3).
    fn cancel(&mut self, at: i64) -> i64 {
        let at = self.go(Action::Cancel, Estado::Cancelada, at);
        self.close_pause(at);
        at
    }
}

/// A path ending in `estado`, with every instant at or before `now`.
pub(crate) fn build(rng: &mut ChaCha8Rng, estado: Estado, now: i64) -> Timeline {
    match estado {
        // Mostly upcoming work, some of it overdue.
        Estado::Programada => {
            let due = now + secs(rng, -DAY, 7 * DAY);
            scheduled(rng, due, now)
        }
        Estado::EnCurso => {
            let due = now - secs(rng, 15 * MIN, 3 * DAY);
            let (mut t, start) = started(rng, due, now);
            if rng.random_bool(PAUSED_BEFORE) {
                pause_and_resume(rng, &mut t, start, now);
            }
            t
        }
        Estado::Pausada => {
            let due = now - secs(rng, 15 * MIN, 3 * DAY);
            let (mut t, start) = started(rng, due, now);
            let mut from = start;
            if rng.random_bool(PAUSED_BEFORE) {
                from = pause_and_resume(rng, &mut t, start, between(start, now, 0.5));
            }
            t.pause(between(from, now, rng.random_range(0.3..0.95)));
            t
        }
        Estado::Finalizada => {
            let due = now - secs(rng, 10 * HOUR, 30 * DAY);
            let (mut t, start) = started(rng, due, now);
            let end = start + secs(rng, 30 * MIN, 8 * HOUR);
            if rng.random_bool(PAUSED_BEFORE) {
                pause_and_resume(rng, &mut t, start, end);
            }
            t.finish(end);
            t
        }
        Estado::Cancelada => cancelled(rng, now),
    }
}

/// Created some time before it is due (or before now, if due later).
fn scheduled(rng: &mut ChaCha8Rng, inicio_programado: i64, now: i64) -> Timeline {
    let created_at = inicio_programado.min(now) - secs(rng, 30 * MIN, 3 * DAY);
    Timeline::new(created_at, inicio_programado)
}

/// Created and started around its scheduled time, which lies in the past, and
/// at least ten minutes ago so later steps fit before `now`.
fn started(rng: &mut ChaCha8Rng, inicio_programado: i64, now: i64) -> (Timeline, i64) {
    let mut t = scheduled(rng, inicio_programado, now);
    let at = (inicio_programado + secs(rng, -10 * MIN, 20 * MIN))
        .max(t.created_at + MIN)
        .min(now - 10 * MIN);
    let start = t.start(at);
    (t, start)
}

/// A closed pause inside `[from, until]`; returns the resume time.
fn pause_and_resume(rng: &mut ChaCha8Rng, t: &mut Timeline, from: i64, until: i64) -> i64 {
    let pause = t.pause(between(from, until, rng.random_range(0.15..0.5)));
    t.resume(between(pause, until, rng.random_range(0.1..0.6)))
}

/// Half cancelled before starting, the rest while running or paused.
fn cancelled(rng: &mut ChaCha8Rng, now: i64) -> Timeline {
    match rng.random_range(0..10) {
        0..=4 => {
            let due = now + secs(rng, -30 * DAY, 7 * DAY);
            let mut t = scheduled(rng, due, now);
            let latest = t.inicio_programado.min(now);
            t.cancel(between(t.created_at, latest, rng.random_range(0.2..0.9)));
            t
        }
        5..=7 => {
            let due = now - secs(rng, 2 * HOUR, 30 * DAY);
            let (mut t, start) = started(rng, due, now);
            let end = (start + 8 * HOUR).min(now);
            t.cancel(between(start, end, rng.random_range(0.1..0.9)));
            t
        }
        _ => {
            let due = now - secs(rng, 2 * HOUR, 30 * DAY);
            let (mut t, start) = started(rng, due, now);
            let end = (start + 8 * HOUR).min(now);
            let pause = t.pause(between(start, end, rng.random_range(0.1..0.5)));
            t.cancel(between(pause, end, rng.random_range(0.2..0.9)));
            t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::shares::{Stream, rng};

    const NOW: i64 = 1_800_000_000;

    /// The §2.3 checks, restated over the generated values.
    fn satisfies_checks(t: &Timeline) -> bool {
        let reales = match (t.inicio_real, t.fin_real) {
            (None, None) => true,
            (Some(i), f) => f.is_none_or(|f| f >= i),
            (None, Some(_)) => false,
        };
        let por_estado = match t.estado {
            Estado::Programada => t.inicio_real.is_none(),
            Estado::EnCurso => t.inicio_real.is_some() && t.pausado_en.is_none(),
            Estado::Pausada => t.inicio_real.is_some() && t.pausado_en.is_some(),
            Estado::Finalizada => t.fin_real.is_some(),
            Estado::Cancelada => t.fin_real.is_none() && t.pausado_en.is_none(),
        };
        reales && por_estado && t.tiempo_pausado >= 0
    }

    #[test]
    fn every_path_is_coherent() {
        let mut r = rng(7, Stream::Timeline);
        for estado in [
            Estado::Programada,
            Estado::EnCurso,
            Estado::Pausada,
            Estado::Finalizada,
            Estado::Cancelada,
        ] {
            for _ in 0..2_000 {
                let t = build(&mut r, estado, NOW);
                assert_eq!(t.estado, estado);
                assert!(satisfies_checks(&t));
                assert_eq!(t.steps.first().map(|s| s.action), Some(Action::Create));
                assert_eq!(t.steps.last().map(|s| s.to), Some(estado));
                assert!(
                    t.steps
                        .windows(2)
                        .all(|w| w[0].at < w[1].at && w[1].from == Some(w[0].to))
                );
                assert!(t.updated_at() <= NOW, "{estado:?} ends after now");
                if t.inicio_real.is_some() {
                    assert!(t.inicio_programado < NOW, "started tareas were due in the past");
                }
                if let (Some(i), Some(f)) = (t.inicio_real, t.fin_real) {
                    assert!(f - i - t.tiempo_pausado > 0);
                }
            }
        }
    }

    #[test]
    fn some_finished_tareas_were_paused() {
        let mut r = rng(7, Stream::Timeline);
        let paused = (0..1_000)
            .filter(|_| build(&mut r, Estado::Finalizada, NOW).tiempo_pausado > 0)
            .count();
        assert!((200..400).contains(&paused), "{paused}");
    }
}
