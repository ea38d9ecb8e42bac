//! `task.unassign` (§6.3 POST /api/v1/tasks/{id}/unassign): removes
//! asignaciones (the removed rows stay in the audit row's `before`) and
//! releases the units whose last hold this was. Ids not assigned are ignored.

use gad_shared::envelope::JobEnvelope;
use gad_shared::job::JobResult;
use serde_json::json;

use super::super::{HandlerContext, HandlerError};
use super::access::{self, Begun};
use super::assign::Params;
use super::events;
use super::release::{self, Cause};
use crate::effects::audit::{self, Entry};

#[derive(Debug, sqlx::FromRow, serde::Serialize)]
struct Removed {
    efectivo_id: i64,
    usuario_id: i64,
    asignado_por_usuario_id: Option<i64>,
    #[serde(with = "gad_shared::time::millis")]
    asignado_en: chrono::DateTime<chrono::Utc>,
    respuesta: String,
    #[serde(with = "gad_shared::time::option_millis")]
    respondida_en: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    let p = Params::parse(job)?;
    let (mut tx, actor) = match access::begin(ctx, job).await? {
        Begun::Done(prior) => return Ok(prior),
        Begun::Run(tx, actor) => (tx, actor),
    };
    if !actor.is_supervisor() {
        return Err(HandlerError::forbidden());
    }
    let locked = access::lock(&mut tx, p.tarea_id)
        .await?
        .ok_or_else(|| HandlerError::not_found("tarea"))?;
    access::ensure_open(&locked)?;
    let before = access::read(&mut tx, p.tarea_id).await?;
    let removed: Vec<Removed> = sqlx::query_as(
        "DELETE FROM tarea_efectivos te USING efectivos e
         WHERE te.tarea_id = $1 AND te.efectivo_id = ANY($2) AND e.id = te.efectivo_id
         RETURNING te.efectivo_id, e.usuario_id, te.asignado_por_usuario_id, te.asignado_en,
                   te.respuesta::text AS respuesta, te.respondida_en",
    )
    .bind(p.tarea_id)
    .bind(&p.efectivo_ids)
    .fetch_all(&mut *tx)
    .await?;
    if !removed.is_empty() {
        let ids: Vec<i64> = removed.iter().map(|r| r.efectivo_id).collect();
        let cause = Cause {
            tarea_id: p.tarea_id,
            actor_usuario_id: Some(actor.usuario_id),
            job_id: job.job_id,
            request_id: job.request_id.as_deref(),
            client: job.client.as_ref(),
            motivo: "desasignado",
        };
        release::release(&mut tx, &ids, cause).await?;
        let after = access::read(&mut tx, p.tarea_id).await?;
        audit::record(
            &mut tx,
            Entry {
                actor_usuario_id: Some(actor.usuario_id),
                before: Some(json!({ "efectivos_asignados": before.efectivos_asignados, "asignaciones": removed })),
                after: Some(json!({ "efectivos_asignados": after.efectivos_asignados })),
                job_id: Some(job.job_id),
                request_id: job.request_id.as_deref(),
                client: job.client.as_ref(),
                ..Entry::new("task_unassigned", "tarea", p.tarea_id)
            },
        )
        .await?;
        let gone: Vec<i64> = removed.iter().map(|r| r.usuario_id).collect();
        events::task_updated(&mut tx, &before, &after, &gone, job.job_id).await?;
        for r in &removed {
            events::task_assigned(&mut tx, &after, r.efectivo_id, r.usuario_id, "desasignado", job.job_id).await?;
        }
    }
    let efectivos = release::assignees(&mut tx, p.tarea_id).await?;
    let body = json!({ "tarea_id": p.tarea_id, "efectivos_asignados": efectivos });
    access::finish(tx, job, JobResult { http_status: 200, body }).await
}
