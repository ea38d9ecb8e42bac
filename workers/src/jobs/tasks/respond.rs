//! `task.respond` (§6.3 POST /api/v1/tasks/{id}/respond, the Accept and
//! Decline buttons): the assignee answers its pendiente asignación. On an
//! `emergencia` tarea still programada, accepting starts it (actor: the
//! unit's usuario) and declining hands it to emergency dispatch for another
//! unit (§4). Elsewhere a decline ends the unit's hold and alerts supervisors.

use gad_shared::envelope::JobEnvelope;
use gad_shared::job::JobResult;
use serde::Deserialize;
use serde_json::json;

use super::super::{HandlerContext, HandlerError};
use super::access::{self, Begun};
use super::release::{self, Cause};
use super::transition::{self, Accion};
use super::{events, fields, notify};
use crate::effects::audit::{self, Entry};

#[derive(Debug, Deserialize)]
struct Params {
    tarea_id: i64,
    respuesta: String,
    #[serde(default)]
    motivo: Option<String>,
}

pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    let p: Params = access::payload(job)?;
    if !matches!(p.respuesta.as_str(), "aceptada" | "rechazada") {
        return Err(fields::invalid(
            "respuesta",
            "invalid_choice",
            "respuesta must be aceptada or rechazada",
        ));
    }
    let motivo = p.motivo.as_deref().map(str::trim).filter(|m| !m.is_empty());
    if motivo.is_some_and(|m| m.chars().count() > 500) {
        return Err(fields::invalid(
            "motivo",
            "invalid_length",
            "motivo must have at most 500 characters",
        ));
    }
    let (mut tx, actor) = match access::begin(ctx, job).await? {
        Begun::Done(prior) => return Ok(prior),
        Begun::Run(tx, actor) => (tx, actor),
    };
    let (locked, standing) = access::lock_visible(&mut tx, p.tarea_id, &actor).await?;
    // Only the assignee answers for itself, whatever its nivel.
    let Some(efectivo_id) = actor.efectivo_id.filter(|_| standing.assigned) else {
        return Err(HandlerError::forbidden());
    };
    access::ensure_open(&locked)?;
    let body = json!({ "tarea_id": p.tarea_id, "efectivo_id": efectivo_id, "respuesta": p.respuesta });
    let actual: String = sqlx::query_scalar(
        "SELECT respuesta::text FROM tarea_efectivos WHERE tarea_id = $1 AND efectivo_id = $2 FOR UPDATE",
    )
    .bind(p.tarea_id)
    .bind(efectivo_id)
    .fetch_one(&mut *tx)
    .await?;
    if actual == p.respuesta {
        // A second press of the same button: already done.
        return access::finish(tx, job, JobResult { http_status: 200, body }).await;
    }
    if actual != "pendiente" {
        return Err(HandlerError::conflict(
            "invalid_transition",
            format!("the asignación was already {actual}"),
            json!({ "estado_actual": actual, "accion": p.respuesta, "permitidas": [] }),
        ));
    }
    sqlx::query(
        "UPDATE tarea_efectivos SET respuesta = $3::respuesta_asignacion, respondida_en = now()
         WHERE tarea_id = $1 AND efectivo_id = $2",
    )
    .bind(p.tarea_id)
    .bind(efectivo_id)
    .bind(&p.respuesta)
    .execute(&mut *tx)
    .await?;
    // The answer acknowledges the notices that asked for it.
    sqlx::query(
        "UPDATE notifications SET acked_at = now()
         WHERE tarea_id = $1 AND recipient_usuario_id = $2 AND acked_at IS NULL
           AND kind IN ('task_assigned', 'emergency_assigned')",
    )
    .bind(p.tarea_id)
    .bind(actor.usuario_id)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        Entry {
            actor_usuario_id: Some(actor.usuario_id),
            before: Some(json!({ "efectivo_id": efectivo_id, "respuesta": actual })),
            after: Some(json!({ "efectivo_id": efectivo_id, "respuesta": p.respuesta, "motivo": motivo })),
            job_id: Some(job.job_id),
            request_id: job.request_id.as_deref(),
            client: job.client.as_ref(),
            ..Entry::new("assignment_answered", "tarea", p.tarea_id)
        },
    )
    .await?;
    let t = access::read(&mut tx, p.tarea_id).await?;
    events::task_assigned(&mut tx, &t, efectivo_id, actor.usuario_id, &p.respuesta, job.job_id).await?;
    let cause = Cause {
        tarea_id: p.tarea_id,
        actor_usuario_id: Some(actor.usuario_id),
        job_id: job.job_id,
        request_id: job.request_id.as_deref(),
        client: job.client.as_ref(),
        motivo: "asignación rechazada",
    };
    let emergencia = locked.tipo == "emergencia";
    match (p.respuesta.as_str(), emergencia) {
        ("aceptada", true) if locked.estado == "programada" => {
            transition::apply(
                &mut tx,
                &locked,
                Accion::Start,
                Some(actor.usuario_id),
                Some("emergencia aceptada"),
                job,
            )
            .await?;
        }
        // Emergency dispatch re-runs for the same tarea, excluding the units
        // that declined it; it also frees this unit and alerts supervisors.
        ("rechazada", true) if locked.estado == "programada" => {
            crate::jobs::emergency::redispatch(&mut tx, p.tarea_id, efectivo_id, job.job_id).await?;
        }
        ("rechazada", _) => {
            release::release(&mut tx, &[efectivo_id], cause).await?;
            let who = notify::display_name(&mut tx, actor.usuario_id).await?;
            let alert = notify::Alert {
                kind: "assignment_declined",
                title: format!("Asignación rechazada ({})", t.codigo),
                content: format!(
                    "{who} rechazó {} — {}\nMotivo: {}",
                    t.codigo,
                    t.titulo,
                    motivo.unwrap_or("-")
                ),
                level: "warning",
                tarea_id: Some(t.id),
                efectivo_id: Some(efectivo_id),
            };
            notify::alert(
                &mut tx,
                alert,
                notify::event_id(job.job_id, "assignment_declined"),
                0,
                job.job_id,
            )
            .await?;
        }
        _ => {}
    }
    access::finish(tx, job, JobResult { http_status: 200, body }).await
}
