//! The generated data as COPY rows for the staging tables of [`super::load`].
//! Column order follows the staging table definitions there. Rows refer to
//! each other by natural key (dni, codigo_interno, codigo) because database
//! ids only exist after the merge.

use super::copy::CopyRows;
use super::people::Staff;
use super::tasks::Plan;

pub(crate) fn usuarios(staff: &Staff) -> CopyRows {
    let mut rows = CopyRows::new();
    for (ord, p) in staff.people.iter().enumerate() {
        rows.value(ord)
            .value(p.uuid)
            .text(&p.dni)
            .text(p.nombre)
            .text(p.apellido)
            .text(&p.email)
            .value(p.role.nivel());
        rows.end_row();
    }
    rows
}

pub(crate) fn efectivos(staff: &Staff) -> CopyRows {
    let mut rows = CopyRows::new();
    for (ord, u) in staff.units.iter().enumerate() {
        let owner = staff.people.get(u.owner).map_or("", |p| p.dni.as_str());
        rows.value(ord)
            .value(u.uuid)
            .text(owner)
            .text(&u.codigo)
            .text(u.rango)
            .text(&u.unidad)
            .opt_text(u.especialidad)
            .text(u.disponibilidad.label())
            .time(u.estado_desde)
            .opt_text(u.ubicacion.map(|p| p.ewkt()).as_deref())
            .opt_time(u.ubicacion_en)
            .opt_value(u.precision_m);
        rows.end_row();
    }
    rows
}

fn dni(staff: &Staff, person: usize) -> &str {
    staff.people.get(person).map_or("", |p| p.dni.as_str())
}

pub(crate) fn tareas(staff: &Staff, plan: &Plan) -> CopyRows {
    let mut rows = CopyRows::new();
    for (ord, t) in plan.tareas.iter().enumerate() {
        let tl = &t.timeline;
        rows.value(ord)
            .value(t.uuid)
            .text(&t.codigo)
            .text(&t.titulo)
            .opt_text(t.descripcion.as_deref())
            .text(t.tipo.label())
            .value(t.prioridad)
            .text(tl.estado.label())
            .time(tl.inicio_programado)
            .opt_time(t.fin_programado)
            .opt_time(tl.inicio_real)
            .opt_time(tl.fin_real)
            .opt_time(tl.pausado_en)
            .value(format_args!("{} seconds", tl.tiempo_pausado))
            .text(dni(staff, t.delegado))
            .text(dni(staff, t.creador))
            .opt_text(t.ubicacion.map(|p| p.ewkt()).as_deref())
            .opt_text(t.ubicacion_descripcion.as_deref())
            .time(tl.created_at)
            .time(tl.updated_at());
        rows.end_row();
    }
    rows
}

pub(crate) fn asignaciones(staff: &Staff, plan: &Plan) -> CopyRows {
    let mut rows = CopyRows::new();
    for a in &plan.asignaciones {
        let (Some(tarea), Some(unit)) = (plan.tareas.get(a.tarea), staff.units.get(a.unit)) else {
            continue;
        };
        rows.text(&tarea.codigo)
            .text(&unit.codigo)
            .text(dni(staff, a.asignado_por))
            .time(a.asignado_en)
            .text(a.respuesta.label())
            .opt_time(a.respondida_en);
        rows.end_row();
    }
    rows
}

pub(crate) fn historial(staff: &Staff, plan: &Plan) -> CopyRows {
    let mut rows = CopyRows::new();
    for (ord, c) in plan.historial.iter().enumerate() {
        let Some(tarea) = plan.tareas.get(c.tarea) else {
            continue;
        };
        rows.value(ord)
            .text(&tarea.codigo)
            .opt_text(c.from.map(|e| e.label()))
            .text(c.to.label())
            .text(dni(staff, c.usuario))
            .opt_text(c.motivo)
            .time(c.at);
        rows.end_row();
    }
    rows
}
