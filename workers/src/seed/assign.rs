//! Who works on each seeded tarea, keeping the release rule (§3) consistent
//! both ways: every `en_tarea` unit holds a running or paused tarea, and only
//! `en_tarea` units hold one.

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::people::{Disponibilidad, Unit};
use super::timeline::{Estado, Timeline};

/// Most tareas have one to three assignees.
const MAX_ASSIGNEES: usize = 3;
/// Draws of a duplicate unit before giving up on one more assignee.
const MAX_TRIES: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Respuesta {
    Pendiente,
    Aceptada,
    Rechazada,
}

impl Respuesta {
    pub fn label(self) -> &'static str {
        match self {
            Respuesta::Pendiente => "pendiente",
            Respuesta::Aceptada => "aceptada",
            Respuesta::Rechazada => "rechazada",
        }
    }
}

/// One assignee of a tarea. `holds` marks the assignment that keeps an
/// `en_tarea` unit held, which therefore may not be declined.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    pub unit: usize,
    pub holds: bool,
}

/// The assignees of each tarea (indexed like `estados`), the first one being
/// the unit whose usuario is the delegado.
pub(crate) fn choose(rng: &mut ChaCha8Rng, estados: &[Estado], units: &[Unit]) -> Vec<Vec<Slot>> {
    let mut held: Vec<usize> = (0..units.len())
        .filter(|&u| units[u].disponibilidad == Disponibilidad::EnTarea)
        .collect();
    held.shuffle(rng);
    let all: Vec<usize> = (0..units.len()).collect();
    let holding: Vec<usize> = (0..estados.len()).filter(|&t| estados[t].holds_units()).collect();
    let mut sets: Vec<Vec<Slot>> = vec![Vec::new(); estados.len()];

    // Coverage: deal the en_tarea units round-robin over the running and
    // paused tareas, so each unit holds at least one and each such tarea gets
    // at least one. The profiles have as many of one as of the other (25% of
    // units, 25% of tareas), so this never exceeds MAX_ASSIGNEES.
    if !holding.is_empty() && !held.is_empty() {
        for j in 0..held.len().max(holding.len()) {
            let set = &mut sets[holding[j % holding.len()]];
            let unit = held[j % held.len()];
            if !set.iter().any(|s| s.unit == unit) {
                set.push(Slot { unit, holds: true });
            }
        }
    }

    for (t, set) in sets.iter_mut().enumerate() {
        // Running and paused tareas draw extra hands only from units already
        // en_tarea: anyone else would be held without being en_tarea.
        let pool = if estados[t].holds_units() && !held.is_empty() {
            &held
        } else {
            &all
        };
        if pool.is_empty() {
            continue;
        }
        let target = rng.random_range(1..=MAX_ASSIGNEES);
        let mut tries = 0;
        while set.len() < target && tries < MAX_TRIES {
            let unit = pool[rng.random_range(0..pool.len())];
            if !set.iter().any(|s| s.unit == unit) {
                set.push(Slot { unit, holds: false });
            }
            tries += 1;
        }
    }
    sets
}

/// The answer of one assignee: the delegado's unit and holding units accepted
/// once work started; others mostly accepted, a few pending or declined.
pub(crate) fn respuesta(rng: &mut ChaCha8Rng, timeline: &Timeline, first: bool, slot: Slot) -> Respuesta {
    let started = timeline.inicio_real.is_some();
    let roll = rng.random_range(0..100);
    match (started, first || slot.holds) {
        (true, true) => Respuesta::Aceptada,
        (true, false) if roll < 85 => Respuesta::Aceptada,
        (true, false) if roll < 95 => Respuesta::Pendiente,
        (true, false) => Respuesta::Rechazada,
        (false, true) if roll < 30 => Respuesta::Aceptada,
        (false, true) => Respuesta::Pendiente,
        (false, false) if roll < 70 => Respuesta::Pendiente,
        (false, false) if roll < 95 => Respuesta::Aceptada,
        (false, false) => Respuesta::Rechazada,
    }
}

/// When an answer was given: after the assignment (at creation) and before
/// work started, or before the last change of a tarea that never started.
pub(crate) fn respondida_en(rng: &mut ChaCha8Rng, timeline: &Timeline, respuesta: Respuesta, now: i64) -> Option<i64> {
    if respuesta == Respuesta::Pendiente {
        return None;
    }
    let limit = match (timeline.inicio_real, timeline.estado) {
        (Some(start), _) => start,
        (None, Estado::Programada) => now,
        (None, _) => timeline.updated_at(),
    };
    Some(super::shares::between(
        timeline.created_at,
        limit,
        rng.random_range(0.05..0.95),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::Profile;
    use crate::seed::people;
    use crate::seed::shares::{self, Stream};

    #[test]
    fn release_rule_holds_both_ways() {
        let staff = people::generate(42, Profile::Dev.sizes(), 1_800_000_000);
        let estados = shares::shuffled(
            &mut shares::rng(1, Stream::Tasks),
            1_000,
            &[
                (Estado::Programada, 40),
                (Estado::EnCurso, 20),
                (Estado::Pausada, 5),
                (Estado::Finalizada, 30),
                (Estado::Cancelada, 5),
            ],
        );
        let sets = choose(&mut shares::rng(1, Stream::Assign), &estados, &staff.units);
        let mut holds = vec![false; staff.units.len()];
        for (t, set) in sets.iter().enumerate() {
            assert!(
                (1..=MAX_ASSIGNEES).contains(&set.len()),
                "tarea {t} has {} assignees",
                set.len()
            );
            if estados[t].holds_units() {
                for s in set {
                    assert_eq!(staff.units[s.unit].disponibilidad, Disponibilidad::EnTarea);
                    holds[s.unit] |= s.holds;
                }
            }
        }
        for (u, unit) in staff.units.iter().enumerate() {
            assert_eq!(holds[u], unit.disponibilidad == Disponibilidad::EnTarea, "unit {u}");
        }
    }
}
