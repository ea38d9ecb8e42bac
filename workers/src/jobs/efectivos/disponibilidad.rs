//! `efectivo.disponibilidad` (§5). `en_tarea` belongs to the system (dispatch,
//! start, release): asking for it is 409 `managed_state`. The unit itself may
//! switch between disponible, no_disponible and fuera_servicio while no task
//! holds it. nivel ≥ 2 may also take a held unit out of service (its
//! asignaciones stay, supervisors are alerted) and bring it back, which
//! returns it to `en_tarea`, the state its holding task gives it.

use gad_shared::domain::efectivo;
use gad_shared::envelope::JobEnvelope;
use gad_shared::error_body::FieldError;
use gad_shared::job::JobResult;
use serde::Deserialize;
use serde_json::json;

use super::events::{self, StatusChange};
use super::{access, parse};
use crate::effects::audit::{self, Entry, Severity};
use crate::effects::job_guard;
use crate::jobs::emergency::alert::{self, Alert, Level};
use crate::jobs::{HandlerContext, HandlerError};

const SETTABLE: [&str; 3] = ["disponible", "no_disponible", "fuera_servicio"];

#[derive(Debug, Deserialize)]
pub struct Params {
    pub id: i64,
    pub disponibilidad: String,
    #[serde(default)]
    pub motivo: Option<String>,
}

impl Params {
    pub fn parse(payload: &serde_json::Value) -> Result<Self, HandlerError> {
        let p: Params = parse(payload)?;
        if p.disponibilidad == "en_tarea" {
            return Err(managed_state());
        }
        let mut errors = Vec::new();
        if !SETTABLE.contains(&p.disponibilidad.as_str()) {
            errors.push(FieldError::new(
                "disponibilidad",
                "invalid_choice",
                "disponibilidad must be one of disponible, no_disponible, fuera_servicio",
            ));
        }
        super::check_len(&mut errors, "motivo", p.motivo.as_deref(), 500);
        if errors.is_empty() {
            Ok(p)
        } else {
            Err(HandlerError::Invalid(errors))
        }
    }
}

fn managed_state() -> HandlerError {
    HandlerError::conflict(
        "managed_state",
        "en_tarea is set and cleared only by the system",
        json!({ "disponibilidad": "en_tarea" }),
    )
}

/// What the change comes to, given who asks and whether a task holds the unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Already there: nothing changes.
    Same,
    Set(&'static str),
    /// A supervisor took a held unit out of service.
    SetHeldOutOfService(&'static str),
    Held,
    Managed,
}

pub fn decide(current: &str, requested: &str, held: bool, supervisor: bool) -> Decision {
    let Some(requested) = SETTABLE.iter().copied().find(|s| *s == requested) else {
        return Decision::Managed;
    };
    if held && !supervisor {
        return if current == requested {
            Decision::Same
        } else {
            Decision::Held
        };
    }
    // Back in service while a task holds the unit means back on that task.
    let target = if held && requested == "disponible" {
        "en_tarea"
    } else {
        requested
    };
    if current == target {
        return Decision::Same;
    }
    match (held, supervisor) {
        (true, _) if target == "en_tarea" => Decision::Set("en_tarea"),
        (true, _) => Decision::SetHeldOutOfService(requested),
        // en_tarea without a hold is a leftover only a supervisor may clear.
        (false, false) if current == "en_tarea" => Decision::Managed,
        (false, _) => Decision::Set(requested),
    }
}

pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    let p = Params::parse(&job.payload)?;
    let mut tx = ctx.db.begin().await?;
    if let Some(prior) = job_guard::lock(&mut tx, job.job_id).await? {
        return Ok(prior);
    }
    let actor = access::actor(&mut tx, job).await?;
    let unit = access::lock_for(&mut tx, &actor, p.id).await?;
    let holding: Option<i64> = sqlx::query_scalar(
        "SELECT te.tarea_id FROM tarea_efectivos te JOIN tareas t ON t.id = te.tarea_id
         WHERE te.efectivo_id = $1 AND te.respuesta <> 'rechazada' AND t.deleted_at IS NULL
           AND (t.estado IN ('en_curso', 'pausada') OR (t.tipo = 'emergencia' AND t.estado = 'programada'))
         ORDER BY t.prioridad DESC, te.tarea_id LIMIT 1",
    )
    .bind(p.id)
    .fetch_optional(&mut *tx)
    .await?;
    let before = efectivo::by_id(&mut *tx, p.id)
        .await?
        .ok_or_else(|| HandlerError::not_found("efectivo"))?;
    let decision = decide(
        &unit.disponibilidad,
        &p.disponibilidad,
        holding.is_some(),
        actor.is_supervisor(),
    );
    let nuevo = match decision {
        Decision::Same => None,
        Decision::Set(d) | Decision::SetHeldOutOfService(d) => Some(d),
        Decision::Held => {
            return Err(HandlerError::conflict(
                "efectivo_held",
                "the efectivo is held by an active task",
                json!({ "efectivo_id": p.id, "tarea_id": holding }),
            ));
        }
        Decision::Managed => return Err(managed_state()),
    };
    if let Some(nuevo) = nuevo {
        sqlx::query(
            "UPDATE efectivos SET disponibilidad = $2::estado_disponibilidad, ultima_actualizacion_estado = now() WHERE id = $1",
        )
        .bind(p.id)
        .bind(nuevo)
        .execute(&mut *tx)
        .await?;
        events::status_changed(
            &mut tx,
            StatusChange {
                efectivo_id: p.id,
                anterior: &unit.disponibilidad,
                nuevo,
                tarea_id: holding,
                motivo: p.motivo.as_deref(),
            },
            Some(job.job_id),
        )
        .await?;
    }
    let after = efectivo::by_id(&mut *tx, p.id)
        .await?
        .ok_or_else(|| HandlerError::not_found("efectivo"))?;
    let body = json!(after);
    if let Decision::SetHeldOutOfService(d) = decision {
        alert::raise(
            &mut tx,
            Alert {
                kind: "efectivo_out_of_service",
                title: format!("{} fuera de servicio con tarea activa", before.codigo_interno),
                content: format!(
                    "{} pasó a {d} mientras tiene una tarea activa{}.",
                    before.codigo_interno,
                    p.motivo.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
                ),
                level: Level::Warning,
                tarea_id: holding,
                efectivo_id: Some(p.id),
            },
            Some(job.job_id),
        )
        .await?;
    }
    if nuevo.is_some() {
        let severity = if matches!(decision, Decision::SetHeldOutOfService(_)) {
            Severity::Medium
        } else {
            Severity::Low
        };
        audit::record(
            &mut tx,
            Entry {
                severity,
                actor_usuario_id: Some(actor.usuario_id),
                before: Some(json!(before)),
                after: Some(json!({ "efectivo": body, "motivo": p.motivo })),
                job_id: Some(job.job_id),
                request_id: job.request_id.as_deref(),
                client: job.client.as_ref(),
                ..Entry::new("disponibilidad_changed", "efectivo", p.id)
            },
        )
        .await?;
    }
    let result = JobResult { http_status: 200, body };
    job_guard::complete(&mut tx, job.job_id, &result).await?;
    tx.commit().await?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_may_change_what() {
        use Decision::*;
        assert_eq!(
            decide("disponible", "fuera_servicio", false, false),
            Set("fuera_servicio")
        );
        assert_eq!(decide("disponible", "disponible", false, false), Same);
        assert_eq!(decide("en_tarea", "no_disponible", true, false), Held);
        assert_eq!(decide("en_tarea", "disponible", true, false), Held);
        assert_eq!(
            decide("en_tarea", "fuera_servicio", true, true),
            SetHeldOutOfService("fuera_servicio")
        );
        assert_eq!(decide("fuera_servicio", "disponible", true, true), Set("en_tarea"));
        assert_eq!(decide("en_tarea", "disponible", true, true), Same);
        assert_eq!(decide("en_tarea", "disponible", false, false), Managed);
        assert_eq!(decide("en_tarea", "disponible", false, true), Set("disponible"));
        assert_eq!(decide("disponible", "en_tarea", false, true), Managed);
    }
}
