//! `efectivo.delete` (nivel 3): soft delete, refused while the unit is held
//! by a task (409 `efectivo_held`).

use gad_shared::domain::efectivo::{self, Efectivo};
use gad_shared::envelope::JobEnvelope;
use gad_shared::job::JobResult;
use serde::Deserialize;
use serde_json::json;

use super::{access, parse};
use crate::effects::audit::{self, Entry, Severity};
use crate::effects::job_guard;
use crate::jobs::{HandlerContext, HandlerError};

#[derive(Debug, Deserialize)]
struct Params {
    id: i64,
}

pub async fn run(ctx: &HandlerContext, job: &JobEnvelope) -> Result<JobResult, HandlerError> {
    let p: Params = parse(&job.payload)?;
    let mut tx = ctx.db.begin().await?;
    if let Some(prior) = job_guard::lock(&mut tx, job.job_id).await? {
        return Ok(prior);
    }
    let actor = access::actor(&mut tx, job).await?;
    access::require_admin(&actor)?;
    access::lock(&mut tx, p.id)
        .await?
        .ok_or_else(|| HandlerError::not_found("efectivo"))?;
    if efectivo::is_held(&mut *tx, p.id).await? {
        return Err(HandlerError::conflict(
            "efectivo_held",
            "the efectivo is held by an active task; unassign or finish it first",
            json!({ "efectivo_id": p.id }),
        ));
    }
    let before = efectivo::by_id(&mut *tx, p.id)
        .await?
        .ok_or_else(|| HandlerError::not_found("efectivo"))?;
    sqlx::query("UPDATE efectivos SET deleted_at = now() WHERE id = $1")
        .bind(p.id)
        .execute(&mut *tx)
        .await?;
    let after: Efectivo = sqlx::query_as(efectivo::select_where("e.id = $1"))
        .bind(p.id)
        .fetch_one(&mut *tx)
        .await?;
    let body = json!(after);
    audit::record(
        &mut tx,
        Entry {
            severity: Severity::Medium,
            actor_usuario_id: Some(actor.usuario_id),
            before: Some(json!(before)),
            after: Some(body.clone()),
            job_id: Some(job.job_id),
            request_id: job.request_id.as_deref(),
            client: job.client.as_ref(),
            ..Entry::new("efectivo_deleted", "efectivo", p.id)
        },
    )
    .await?;
    let result = JobResult { http_status: 200, body };
    job_guard::complete(&mut tx, job.job_id, &result).await?;
    tx.commit().await?;
    Ok(result)
}
