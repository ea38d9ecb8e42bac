//! Re-dispatch of an emergencia whose unit declined it or did not answer in
//! time (§4): the asignación is marked rechazada, the unit goes back to
//! `disponible` (unless something else holds it or it was set out of service
//! by hand), and the nearest free unit that has not declined this tarea gets
//! the asignación and becomes the delegado. Runs in the caller's transaction.
//!
//! Lock order, shared with the task jobs: tarea, then asignación, then efectivos.

use serde_json::json;
use uuid::Uuid;

use super::alert::{self, Alert, Level};
use super::notify::{self, Assigned};
use super::task_events::{self, Assignment};
use super::{config, pick};
use crate::effects::Tx;
use crate::effects::audit::{self, Entry, Severity};
use crate::jobs::HandlerError;
use crate::jobs::efectivos::events::{self as efectivo_events, StatusChange};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The unit answered rechazada (`task.respond`).
    Declined,
    /// No answer within `EMERGENCY_ACK_TIMEOUT` (the timers loop).
    AckTimeout,
}

impl Reason {
    fn alert_kind(self) -> &'static str {
        match self {
            Reason::Declined => "assignment_declined",
            Reason::AckTimeout => "ack_timeout",
        }
    }
    fn motivo(self) -> &'static str {
        match self {
            Reason::Declined => "asignación rechazada",
            Reason::AckTimeout => "sin respuesta dentro del plazo",
        }
    }
}

/// What became of the tarea.
#[derive(Debug, Clone, PartialEq)]
pub enum Redispatched {
    /// Moved to this unit.
    To {
        efectivo_id: i64,
        usuario_id: i64,
        distance_m: f64,
    },
    /// No unit left: supervisors were alerted (`emergency_unassigned`).
    Unassigned,
    /// The asignación was already rechazada: nothing to do.
    AlreadyDone,
}

/// A decline (`POST /tasks/{id}/respond` with `rechazada`) of an emergencia
/// asignación, called by `task.respond` in its transaction after it checked
/// who answers. The caller may already have set `respuesta = rechazada`; it
/// writes its own `assignment_answered` audit row and `task_assigned`
/// (`accion: "rechazada"`) event, so those are not repeated here. A unit
/// already in the tarea's declined list is a repeat: nothing happens.
pub async fn redispatch(
    tx: &mut Tx<'_>,
    tarea_id: i64,
    declined_efectivo_id: i64,
    job_id: Uuid,
) -> Result<(), HandlerError> {
    redispatch_for(tx, tarea_id, declined_efectivo_id, job_id, Reason::Declined)
        .await
        .map(|_| ())
}

#[derive(sqlx::FromRow)]
struct TareaRow {
    codigo: String,
    tipo: String,
    estado: String,
    delegado_usuario_id: i64,
    descripcion: Option<String>,
    lat: Option<f64>,
    lng: Option<f64>,
    declined: Vec<i64>,
}

#[derive(sqlx::FromRow)]
struct AsignacionRow {
    respuesta: String,
    usuario_id: i64,
    codigo_interno: String,
}

pub async fn redispatch_for(
    tx: &mut Tx<'_>,
    tarea_id: i64,
    efectivo_id: i64,
    job_id: Uuid,
    reason: Reason,
) -> Result<Redispatched, HandlerError> {
    let tarea: TareaRow = sqlx::query_as(
        "SELECT codigo, tipo::text AS tipo, estado::text AS estado, delegado_usuario_id, descripcion,
                ST_Y(ubicacion::geometry) AS lat, ST_X(ubicacion::geometry) AS lng,
                COALESCE(ARRAY(SELECT jsonb_array_elements_text(
                    CASE WHEN jsonb_typeof(extra_data->'declined') = 'array' THEN extra_data->'declined' ELSE '[]' END
                )::bigint), '{}') AS declined
         FROM tareas WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
    )
    .bind(tarea_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| HandlerError::not_found("tarea"))?;
    if tarea.tipo != "emergencia" || tarea.estado != "programada" {
        return Err(HandlerError::conflict(
            "invalid_transition",
            "only an emergencia still waiting for its unit is re-dispatched",
            json!({ "estado_actual": tarea.estado, "accion": "redispatch", "permitidas": [] }),
        ));
    }
    let asignacion: AsignacionRow = sqlx::query_as(
        "SELECT te.respuesta::text AS respuesta, e.usuario_id, e.codigo_interno
         FROM tarea_efectivos te JOIN efectivos e ON e.id = te.efectivo_id
         WHERE te.tarea_id = $1 AND te.efectivo_id = $2 FOR UPDATE OF te",
    )
    .bind(tarea_id)
    .bind(efectivo_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| HandlerError::not_found("asignación"))?;
    if tarea.declined.contains(&efectivo_id) {
        return Ok(Redispatched::AlreadyDone);
    }
    if asignacion.respuesta == "aceptada" {
        return Err(HandlerError::conflict(
            "invalid_transition",
            "the asignación was already aceptada",
            json!({ "estado_actual": "aceptada", "accion": "rechazada", "permitidas": [] }),
        ));
    }
    let before = json!({
        "tarea_id": tarea_id, "efectivo_id": efectivo_id, "respuesta": asignacion.respuesta,
        "delegado_usuario_id": tarea.delegado_usuario_id,
    });
    sqlx::query(
        "UPDATE tarea_efectivos SET respuesta = 'rechazada', respondida_en = now()
         WHERE tarea_id = $1 AND efectivo_id = $2 AND respuesta <> 'rechazada'",
    )
    .bind(tarea_id)
    .bind(efectivo_id)
    .execute(&mut **tx)
    .await?;
    let mut declined = tarea.declined.clone();
    if !declined.contains(&efectivo_id) {
        declined.push(efectivo_id);
    }
    sqlx::query("UPDATE tareas SET extra_data = jsonb_set(extra_data, '{declined}', $2) WHERE id = $1")
        .bind(tarea_id)
        .bind(json!(declined))
        .execute(&mut **tx)
        .await?;
    release(tx, efectivo_id, tarea_id, reason, job_id).await?;
    if reason == Reason::AckTimeout {
        // Nobody answered, so nobody else records the answer.
        task_events::task_assigned(
            tx,
            Assignment {
                tarea_id,
                codigo: &tarea.codigo,
                efectivo_id,
                usuario_id: asignacion.usuario_id,
                accion: "rechazada",
            },
            job_id,
        )
        .await?;
        audit::record(
            tx,
            Entry {
                severity: Severity::Medium,
                before: Some(before.clone()),
                after: Some(json!({ "respuesta": "rechazada", "motivo": "ack_timeout" })),
                job_id: Some(job_id),
                ..Entry::new("assignment_answered", "tarea", tarea_id)
            },
        )
        .await?;
    }
    alert::raise(
        tx,
        Alert {
            kind: reason.alert_kind(),
            title: format!("Emergencia {}: {}", tarea.codigo, reason.motivo()),
            content: format!(
                "{} no atiende la emergencia {} ({}).",
                asignacion.codigo_interno,
                tarea.codigo,
                reason.motivo()
            ),
            level: Level::Warning,
            tarea_id: Some(tarea_id),
            efectivo_id: Some(efectivo_id),
        },
        Some(job_id),
    )
    .await?;

    // Units already on this tarea (other asignaciones) are not candidates either.
    let mut exclude: Vec<i64> = sqlx::query_scalar("SELECT efectivo_id FROM tarea_efectivos WHERE tarea_id = $1")
        .bind(tarea_id)
        .fetch_all(&mut **tx)
        .await?;
    exclude.extend_from_slice(&declined);
    let next = match (tarea.lat, tarea.lng) {
        (Some(lat), Some(lng)) => pick::nearest_free(tx, lat, lng, &exclude, &config::get()).await?,
        _ => None,
    };
    let Some(unit) = next else {
        unassigned(tx, tarea_id, &tarea.codigo, reason, before, job_id).await?;
        return Ok(Redispatched::Unassigned);
    };

    sqlx::query(
        "UPDATE tarea_efectivos SET efectivo_id = $3, respuesta = 'pendiente', respondida_en = NULL,
                asignado_en = now(), asignado_por_usuario_id = NULL
         WHERE tarea_id = $1 AND efectivo_id = $2",
    )
    .bind(tarea_id)
    .bind(efectivo_id)
    .bind(unit.efectivo_id)
    .execute(&mut **tx)
    .await?;
    // The delegado follows the unit it was; a hand-picked delegado stays.
    let delegado_moved =
        sqlx::query("UPDATE tareas SET delegado_usuario_id = $2 WHERE id = $1 AND delegado_usuario_id = $3")
            .bind(tarea_id)
            .bind(unit.usuario_id)
            .bind(asignacion.usuario_id)
            .execute(&mut **tx)
            .await?
            .rows_affected()
            == 1;
    let changed: &[&str] = if delegado_moved {
        &["delegado_usuario_id", "efectivos_asignados"]
    } else {
        &["efectivos_asignados"]
    };
    efectivo_events::status_changed(
        tx,
        StatusChange {
            efectivo_id: unit.efectivo_id,
            anterior: "disponible",
            nuevo: "en_tarea",
            tarea_id: Some(tarea_id),
            motivo: Some(super::dispatch::MOTIVO),
        },
        Some(job_id),
    )
    .await?;
    let snapshot = task_events::tarea_snapshot(tx, tarea_id, Some(changed), job_id).await?;
    task_events::task_assigned(
        tx,
        Assignment {
            tarea_id,
            codigo: &tarea.codigo,
            efectivo_id: unit.efectivo_id,
            usuario_id: unit.usuario_id,
            accion: "asignado",
        },
        job_id,
    )
    .await?;
    notify::emergency_assigned(
        tx,
        Assigned {
            recipient_usuario_id: unit.usuario_id,
            tarea_id,
            codigo: &tarea.codigo,
            descripcion: tarea.descripcion.as_deref(),
            lat: tarea.lat,
            lng: tarea.lng,
            distance_m: Some(unit.distance_m),
            reminder: false,
        },
        Uuid::now_v7(),
    )
    .await?;
    audit::record(
        tx,
        Entry {
            severity: Severity::High,
            before: Some(before),
            after: Some(
                json!({ "tarea": snapshot, "efectivo_id": unit.efectivo_id, "distance_m": unit.distance_m,
                                "motivo": reason.alert_kind() }),
            ),
            job_id: Some(job_id),
            ..Entry::new("task_assigned", "tarea", tarea_id)
        },
    )
    .await?;
    Ok(Redispatched::To {
        efectivo_id: unit.efectivo_id,
        usuario_id: unit.usuario_id,
        distance_m: unit.distance_m,
    })
}

/// The declining unit goes back to `disponible` when this was its last hold
/// and it is `en_tarea`; a manual `fuera_servicio`/`no_disponible` stays.
async fn release(
    tx: &mut Tx<'_>,
    efectivo_id: i64,
    tarea_id: i64,
    reason: Reason,
    job_id: Uuid,
) -> Result<(), sqlx::Error> {
    let released: Option<i64> = sqlx::query_scalar(
        "UPDATE efectivos SET disponibilidad = 'disponible', ultima_actualizacion_estado = now()
         WHERE id = $1 AND disponibilidad = 'en_tarea' AND NOT EXISTS (
             SELECT 1 FROM tarea_efectivos te JOIN tareas t ON t.id = te.tarea_id
             WHERE te.efectivo_id = $1 AND te.respuesta <> 'rechazada' AND t.deleted_at IS NULL
               AND (t.estado IN ('en_curso', 'pausada') OR (t.tipo = 'emergencia' AND t.estado = 'programada')))
         RETURNING id",
    )
    .bind(efectivo_id)
    .fetch_optional(&mut **tx)
    .await?;
    if released.is_some() {
        efectivo_events::status_changed(
            tx,
            StatusChange {
                efectivo_id,
                anterior: "en_tarea",
                nuevo: "disponible",
                tarea_id: Some(tarea_id),
                motivo: Some(reason.motivo()),
            },
            Some(job_id),
        )
        .await?;
    }
    Ok(())
}

async fn unassigned(
    tx: &mut Tx<'_>,
    tarea_id: i64,
    codigo: &str,
    reason: Reason,
    before: serde_json::Value,
    job_id: Uuid,
) -> Result<(), sqlx::Error> {
    alert::raise(
        tx,
        Alert {
            kind: "emergency_unassigned",
            title: format!("Emergencia {codigo} sin efectivo"),
            content: format!(
                "No quedan efectivos disponibles para la emergencia {codigo} ({}).",
                reason.motivo()
            ),
            level: Level::Critical,
            tarea_id: Some(tarea_id),
            efectivo_id: None,
        },
        Some(job_id),
    )
    .await?;
    audit::record(
        tx,
        Entry {
            severity: Severity::High,
            before: Some(before),
            job_id: Some(job_id),
            success: false,
            error_code: Some("no_efectivo_available"),
            ..Entry::new("emergency_unassigned", "tarea", tarea_id)
        },
    )
    .await?;
    Ok(())
}
