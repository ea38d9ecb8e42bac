//! `task.delete` (§6.3 DELETE /api/v1/tasks/{id}): soft delete of a
//! programada or terminal tarea. A tarea at work must be cancelled first, so
//! deleting never skips the cancel's historial row and notices. A deleted
//! tarea holds no unit any more (an emergencia still programada did).

use gad_shared::envelope::JobEnvelope;
use gad_shared::job::JobResult;
use serde::Deserialize;
use serde_json::json;

use super::super::{HandlerContext, HandlerError};
use super::access::{self, Begun};
use super::events;
use super::release::{self, Cause};
use super::transition::Accion;
use crate::effects::audit::{self, Entry, Severity};

#[derive(Debug, Deserialize)]
struct Params {
    tarea_id: i64,
}

pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    let p: Params = access::payload(job)?;
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
    if matches!(locked.estado.as_str(), "en_curso" | "pausada") {
        return Err(HandlerError::conflict(
            "invalid_transition",
            format!(
                "tarea {} is {}: cancel it before deleting it",
                locked.codigo, locked.estado
            ),
            json!({ "estado_actual": locked.estado, "accion": "delete", "permitidas": Accion::permitidas(&locked.estado) }),
        ));
    }
    let before = access::read(&mut tx, p.tarea_id).await?;
    sqlx::query("UPDATE tareas SET deleted_at = now() WHERE id = $1")
        .bind(p.tarea_id)
        .execute(&mut *tx)
        .await?;
    let units = release::assignees(&mut tx, p.tarea_id).await?;
    let cause = Cause {
        tarea_id: p.tarea_id,
        actor_usuario_id: Some(actor.usuario_id),
        job_id: job.job_id,
        request_id: job.request_id.as_deref(),
        client: job.client.as_ref(),
        motivo: "tarea eliminada",
    };
    release::release(&mut tx, &units, cause).await?;
    let after = access::read(&mut tx, p.tarea_id).await?;
    audit::record(
        &mut tx,
        Entry {
            severity: Severity::Medium,
            actor_usuario_id: Some(actor.usuario_id),
            before: Some(json!(before)),
            after: Some(json!({ "deleted": true, "tarea": after })),
            job_id: Some(job.job_id),
            request_id: job.request_id.as_deref(),
            client: job.client.as_ref(),
            ..Entry::new("task_deleted", "tarea", p.tarea_id)
        },
    )
    .await?;
    // §8 has no deletion event: dashboards learn it from `task_updated`.
    let topics = events::task_topics(&mut tx, &after, &[]).await?;
    let data = json!({ "tarea": after, "changed": ["deleted_at"], "deleted": true });
    crate::effects::outbox::event(&mut tx, "task_updated", &topics, data, Some(job.job_id)).await?;
    access::finish(
        tx,
        job,
        JobResult {
            http_status: 200,
            body: json!(after),
        },
    )
    .await
}
