//! Seeded tareas with their assignments and history (domain.md §10).

use std::collections::HashMap;

use rand::Rng;
use rand::seq::IndexedRandom;
use uuid::Uuid;

use super::assign::{self, Respuesta};
use super::people::Staff;
use super::positions::{self, HOTSPOTS, Point};
use super::shares::{self, Stream, secs};
use super::timeline::{self, Action, Estado, Timeline};

const HOUR: i64 = 3_600;
const CON_UBICACION_PCT: u32 = 90;
/// Share of tareas with a planned end.
const CON_FIN_PROGRAMADO: f64 = 0.7;

const MOTIVOS_PAUSA: [&str; 4] = [
    "Espera de apoyo",
    "Traslado de detenido",
    "Relevo de turno",
    "Condiciones climáticas",
];
const MOTIVOS_CANCELACION: [&str; 4] = [
    "Cancelada por el supervisor",
    "Tarea duplicada",
    "Falta de recursos",
    "Objetivo reasignado a otra unidad",
];

/// Every tipo but `emergencia`, which only emergency dispatch creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tipo {
    Patrullaje,
    Investigacion,
    Vigilancia,
    Intervencion,
    Administrativa,
    Entrenamiento,
}

impl Tipo {
    pub fn label(self) -> &'static str {
        match self {
            Tipo::Patrullaje => "patrullaje",
            Tipo::Investigacion => "investigacion",
            Tipo::Vigilancia => "vigilancia",
            Tipo::Intervencion => "intervencion",
            Tipo::Administrativa => "administrativa",
            Tipo::Entrenamiento => "entrenamiento",
        }
    }

    fn titulo(self) -> &'static str {
        match self {
            Tipo::Patrullaje => "Patrullaje preventivo",
            Tipo::Investigacion => "Investigación de denuncia",
            Tipo::Vigilancia => "Vigilancia de objetivo",
            Tipo::Intervencion => "Intervención en vía pública",
            Tipo::Administrativa => "Gestión administrativa",
            Tipo::Entrenamiento => "Entrenamiento operativo",
        }
    }
}

pub(crate) struct Tarea {
    pub uuid: Uuid,
    pub codigo: String,
    pub titulo: String,
    pub descripcion: Option<String>,
    pub tipo: Tipo,
    pub prioridad: i16,
    pub timeline: Timeline,
    pub fin_programado: Option<i64>,
    /// Indexes into [`Staff::people`].
    pub delegado: usize,
    pub creador: usize,
    pub ubicacion: Option<Point>,
    pub ubicacion_descripcion: Option<String>,
}

pub(crate) struct Asignacion {
    pub tarea: usize,
    pub unit: usize,
    pub asignado_por: usize,
    pub asignado_en: i64,
    pub respuesta: Respuesta,
    pub respondida_en: Option<i64>,
}

/// One historial row; `tarea` and `usuario` index the plan and the staff.
pub(crate) struct Cambio {
    pub tarea: usize,
    pub from: Option<Estado>,
    pub to: Estado,
    pub usuario: usize,
    pub motivo: Option<&'static str>,
    pub at: i64,
}

#[derive(Default)]
pub(crate) struct Plan {
    pub tareas: Vec<Tarea>,
    pub asignaciones: Vec<Asignacion>,
    pub historial: Vec<Cambio>,
}

/// Generates `count` tareas. Also moves `ultima_actualizacion_estado` of each
/// `en_tarea` unit to the start of the tarea that holds it.
pub(crate) fn generate(seed: u64, count: usize, staff: &mut Staff, now: i64) -> Plan {
    let supervisors: Vec<usize> = staff.supervisors.clone().collect();
    if staff.units.is_empty() || supervisors.is_empty() {
        return Plan::default();
    }
    let mut rng = shares::rng(seed, Stream::Tasks);
    let mut ids = shares::rng(seed, Stream::TaskIds);
    let mut time_rng = shares::rng(seed, Stream::Timeline);
    let mut assign_rng = shares::rng(seed, Stream::Assign);

    let estados = shares::shuffled(
        &mut rng,
        count,
        &[
            (Estado::Programada, 40),
            (Estado::EnCurso, 20),
            (Estado::Pausada, 5),
            (Estado::Finalizada, 30),
            (Estado::Cancelada, 5),
        ],
    );
    let prioridades = shares::shuffled(&mut rng, count, &[(1i16, 20), (2, 35), (3, 25), (4, 12), (5, 8)]);
    let tipos = shares::shuffled(
        &mut rng,
        count,
        &[
            (Tipo::Patrullaje, 1),
            (Tipo::Investigacion, 1),
            (Tipo::Vigilancia, 1),
            (Tipo::Intervencion, 1),
            (Tipo::Administrativa, 1),
            (Tipo::Entrenamiento, 1),
        ],
    );
    let located = shares::shuffled(
        &mut rng,
        count,
        &[(true, CON_UBICACION_PCT), (false, 100 - CON_UBICACION_PCT)],
    );
    let located_count = located.iter().filter(|&&l| l).count();
    let mut points = positions::sample(&mut shares::rng(seed, Stream::TaskPositions), located_count).into_iter();
    let sets = assign::choose(&mut assign_rng, &estados, &staff.units);

    let mut plan = Plan {
        tareas: Vec::with_capacity(count),
        asignaciones: Vec::with_capacity(count * 2),
        historial: Vec::with_capacity(count * 3),
    };
    // Active windows per delegado, so the optional ex_tareas_solape rule (§2.3)
    // never rejects the seed when a database enables it.
    let mut busy: HashMap<usize, Vec<(i64, i64)>> = HashMap::new();

    for (i, set) in sets.iter().enumerate() {
        let tl = timeline::build(&mut time_rng, estados[i], now);
        let Some(first) = set.first() else { continue };
        let delegado = staff.units[first.unit].owner;
        let creador = supervisors.choose(&mut rng).copied().unwrap_or(delegado);

        let mut fin_programado = rng
            .random_bool(CON_FIN_PROGRAMADO)
            .then(|| tl.inicio_programado + secs(&mut rng, HOUR, 8 * HOUR));
        if let Some(fin) = fin_programado.filter(|_| tl.estado.is_active()) {
            let windows = busy.entry(delegado).or_default();
            if windows.iter().any(|&(a, b)| tl.inicio_programado < b && a < fin) {
                fin_programado = None;
            } else {
                windows.push((tl.inicio_programado, fin));
            }
        }

        let ubicacion = if located[i] { points.next() } else { None };
        let barrio = match ubicacion {
            Some(p) => HOTSPOTS[positions::nearest_hotspot(p)].name,
            None => HOTSPOTS[rng.random_range(0..HOTSPOTS.len())].name,
        };
        let tarea_index = plan.tareas.len();

        for (k, slot) in set.iter().enumerate() {
            let respuesta = assign::respuesta(&mut assign_rng, &tl, k == 0, *slot);
            if slot.holds
                && let Some(start) = tl.inicio_real
            {
                staff.units[slot.unit].estado_desde = start;
            }
            plan.asignaciones.push(Asignacion {
                tarea: tarea_index,
                unit: slot.unit,
                asignado_por: creador,
                asignado_en: tl.created_at,
                respuesta,
                respondida_en: assign::respondida_en(&mut assign_rng, &tl, respuesta, now),
            });
        }
        for step in &tl.steps {
            let (usuario, motivo) = match step.action {
                Action::Create => (creador, Some("creada")),
                Action::Cancel => (creador, MOTIVOS_CANCELACION.choose(&mut rng).copied()),
                Action::Pause => (delegado, MOTIVOS_PAUSA.choose(&mut rng).copied()),
                Action::Start | Action::Resume | Action::Finish => (delegado, None),
            };
            plan.historial.push(Cambio {
                tarea: tarea_index,
                from: step.from,
                to: step.to,
                usuario,
                motivo,
                at: step.at,
            });
        }

        let tipo = tipos[i];
        plan.tareas.push(Tarea {
            uuid: shares::uuid(&mut ids),
            codigo: format!("SEED-{:06}", i + 1),
            titulo: format!("{} en {barrio}", tipo.titulo()),
            descripcion: rng
                .random_bool(0.5)
                .then(|| format!("{} asignada desde la central para la zona de {barrio}.", tipo.titulo())),
            tipo,
            prioridad: prioridades[i],
            timeline: tl,
            fin_programado,
            delegado,
            creador,
            ubicacion,
            ubicacion_descripcion: ubicacion.map(|_| format!("Cerca de {barrio}")),
        });
    }
    plan
}
