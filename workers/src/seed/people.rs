//! Seeded usuarios and their efectivos (domain.md §10).

use rand::Rng;
use rand::seq::IndexedRandom;
use uuid::Uuid;

use super::Sizes;
use super::positions::{self, Point};
use super::shares::{self, Stream};

const NOMBRES: [&str; 24] = [
    "María",
    "José",
    "Juan",
    "Ana",
    "Carlos",
    "Laura",
    "Luis",
    "Lucía",
    "Jorge",
    "Sofía",
    "Miguel",
    "Valentina",
    "Pedro",
    "Camila",
    "Diego",
    "Florencia",
    "Pablo",
    "Martina",
    "Sergio",
    "Paula",
    "Javier",
    "Carmen",
    "Marcos",
    "Julieta",
];
const APELLIDOS: [&str; 24] = [
    "González",
    "Rodríguez",
    "Gómez",
    "Fernández",
    "López",
    "Díaz",
    "Martínez",
    "Pérez",
    "García",
    "Sánchez",
    "Romero",
    "Sosa",
    "Torres",
    "Álvarez",
    "Ruiz",
    "Ramírez",
    "Flores",
    "Benítez",
    "Acosta",
    "Medina",
    "Herrera",
    "Suárez",
    "Aguirre",
    "Giménez",
];
const RANGOS: [&str; 6] = [
    "Agente",
    "Cabo",
    "Cabo primero",
    "Sargento",
    "Subinspector",
    "Inspector",
];
const ESPECIALIDADES: [&str; 5] = ["Tránsito", "Motorizada", "Canes", "Investigaciones", "Prevención"];

/// DNI blocks per role, fixed for every profile, so a given login keeps its DNI
/// when the profile changes; a re-run can then update rows in place without
/// DNIs trading places between people (see `load`).
const DNI_ADMIN: u32 = 90_000_000;
const DNI_SUPERVISOR: u32 = DNI_ADMIN + MAX_ADMINS as u32;
const DNI_EFECTIVO: u32 = DNI_SUPERVISOR + MAX_SUPERVISORS as u32;
const MAX_ADMINS: usize = 10;
const MAX_SUPERVISORS: usize = 1_000;

/// Percentages of efectivos without a known position.
const SIN_UBICACION_PCT: u32 = 2;
/// How stale a seeded position may be.
const POSITION_MAX_AGE_S: i64 = 30 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Admin,
    Supervisor,
    Efectivo,
}

impl Role {
    pub fn nivel(self) -> i16 {
        match self {
            Role::Efectivo => 1,
            Role::Supervisor => 2,
            Role::Admin => 3,
        }
    }

    fn email_prefix(self) -> &'static str {
        match self {
            Role::Efectivo => "efectivo",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    fn dni_base(self) -> u32 {
        match self {
            Role::Admin => DNI_ADMIN,
            Role::Supervisor => DNI_SUPERVISOR,
            Role::Efectivo => DNI_EFECTIVO,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disponibilidad {
    Disponible,
    EnTarea,
    FueraServicio,
    NoDisponible,
}

impl Disponibilidad {
    pub fn label(self) -> &'static str {
        match self {
            Disponibilidad::Disponible => "disponible",
            Disponibilidad::EnTarea => "en_tarea",
            Disponibilidad::FueraServicio => "fuera_servicio",
            Disponibilidad::NoDisponible => "no_disponible",
        }
    }
}

pub(crate) struct Person {
    pub role: Role,
    pub uuid: Uuid,
    pub dni: String,
    pub nombre: &'static str,
    pub apellido: &'static str,
    pub email: String,
}

pub(crate) struct Unit {
    /// Index of the owning usuario in [`Staff::people`].
    pub owner: usize,
    pub uuid: Uuid,
    pub codigo: String,
    pub rango: &'static str,
    pub unidad: String,
    pub especialidad: Option<&'static str>,
    pub disponibilidad: Disponibilidad,
    /// `ultima_actualizacion_estado`; the task generator moves it to the start
    /// of the task that put an `en_tarea` unit to work.
    pub estado_desde: i64,
    pub ubicacion: Option<Point>,
    pub ubicacion_en: Option<i64>,
    pub precision_m: Option<f32>,
}

pub(crate) struct Staff {
    /// Admins, then supervisors, then field officers; `units[i].owner` is
    /// `first_efectivo + i`.
    pub people: Vec<Person>,
    pub units: Vec<Unit>,
    pub supervisors: std::ops::Range<usize>,
}

// Both profiles must fit the fixed DNI blocks.
const _: () = {
    let bench = super::Profile::Bench.sizes();
    assert!(bench.admins <= MAX_ADMINS && bench.supervisors <= MAX_SUPERVISORS);
};

pub(crate) fn generate(seed: u64, sizes: Sizes, now: i64) -> Staff {
    let mut rng = shares::rng(seed, Stream::People);
    let mut ids = shares::rng(seed, Stream::PeopleIds);
    let mut people = Vec::with_capacity(sizes.admins + sizes.supervisors + sizes.efectivos);
    for (role, count) in [
        (Role::Admin, sizes.admins),
        (Role::Supervisor, sizes.supervisors),
        (Role::Efectivo, sizes.efectivos),
    ] {
        for n in 1..=count {
            people.push(Person {
                role,
                uuid: shares::uuid(&mut ids),
                dni: (role.dni_base() + n as u32 - 1).to_string(),
                nombre: NOMBRES.choose(&mut rng).copied().unwrap_or("Ana"),
                apellido: APELLIDOS.choose(&mut rng).copied().unwrap_or("Pérez"),
                email: format!("{}{n}@seed.invalid", role.email_prefix()),
            });
        }
    }
    let first_efectivo = sizes.admins + sizes.supervisors;
    let units = units(seed, sizes.efectivos, first_efectivo, now, &mut ids);
    Staff {
        people,
        units,
        supervisors: sizes.admins..first_efectivo,
    }
}

fn units(seed: u64, count: usize, first_owner: usize, now: i64, ids: &mut rand_chacha::ChaCha8Rng) -> Vec<Unit> {
    let mut rng = shares::rng(seed, Stream::Units);
    let disponibilidad = shares::shuffled(
        &mut rng,
        count,
        &[
            (Disponibilidad::Disponible, 60),
            (Disponibilidad::EnTarea, 25),
            (Disponibilidad::FueraServicio, 10),
            (Disponibilidad::NoDisponible, 5),
        ],
    );
    let located = shares::shuffled(
        &mut rng,
        count,
        &[(true, 100 - SIN_UBICACION_PCT), (false, SIN_UBICACION_PCT)],
    );
    let located_count = located.iter().filter(|&&l| l).count();
    let mut points = positions::sample(&mut shares::rng(seed, Stream::Positions), located_count).into_iter();

    let mut out = Vec::with_capacity(count);
    for (i, (disp, has_pos)) in disponibilidad.into_iter().zip(located).enumerate() {
        let ubicacion = if has_pos { points.next() } else { None };
        // Units report to the precinct of the area they patrol.
        let comisaria = match ubicacion {
            Some(p) => positions::nearest_hotspot(p),
            None => rng.random_range(0..positions::HOTSPOTS.len()),
        };
        out.push(Unit {
            owner: first_owner + i,
            uuid: shares::uuid(ids),
            codigo: format!("EF-{:06}", i + 1),
            rango: RANGOS.choose(&mut rng).copied().unwrap_or("Agente"),
            unidad: format!("Comisaría Vecinal {}", comisaria + 1),
            especialidad: if rng.random_bool(0.4) {
                ESPECIALIDADES.choose(&mut rng).copied()
            } else {
                None
            },
            disponibilidad: disp,
            estado_desde: now - shares::secs(&mut rng, 600, 7 * 86_400),
            ubicacion_en: ubicacion.map(|_| now - shares::secs(&mut rng, 0, POSITION_MAX_AGE_S)),
            precision_m: ubicacion.map(|_| (rng.random_range(30..=500) as f32) / 10.0),
            ubicacion,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::Profile;

    #[test]
    fn fixed_logins_and_dni_blocks() {
        let staff = generate(42, Profile::Dev.sizes(), 1_700_000_000);
        assert_eq!(staff.people.len(), 1_023);
        assert_eq!(staff.people[0].email, "admin1@seed.invalid");
        assert_eq!(staff.people[0].dni, "90000000");
        assert_eq!(staff.people[3].email, "supervisor1@seed.invalid");
        assert_eq!(staff.people[23].email, "efectivo1@seed.invalid");
        assert_eq!(staff.people[23].dni, DNI_EFECTIVO.to_string());
        assert_eq!(staff.units[0].owner, 23);
        assert_eq!(staff.units[999].codigo, "EF-001000");
        let unlocated = staff.units.iter().filter(|u| u.ubicacion.is_none()).count();
        assert_eq!(unlocated, 20);
        let en_tarea = staff
            .units
            .iter()
            .filter(|u| u.disponibilidad == Disponibilidad::EnTarea)
            .count();
        assert_eq!(en_tarea, 250);
    }
}
