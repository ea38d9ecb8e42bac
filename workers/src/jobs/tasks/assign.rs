//! `task.assign` (§6.3 POST /api/v1/tasks/{id}/assign): adds asignaciones.
//! Units already assigned are left as they are; a deleted unit is 404, one
//! out of service or unavailable is 409 `efectivo_unavailable`. On a tarea
//! already at work, new `disponible` assignees become `en_tarea`.

use gad_shared::envelope::JobEnvelope;
use gad_shared::job::{JobError, JobResult};
use serde::Deserialize;
use serde_json::json;

use super::super::{HandlerContext, HandlerError};
use super::access::{self, Begun};
use super::release::{self, Cause};
use super::{create, events};
use crate::effects::Tx;
use crate::effects::audit::{self, Entry};

#[derive(Debug, Deserialize)]
pub(super) struct Params {
    pub tarea_id: i64,
    pub efectivo_ids: Vec<i64>,
}

impl Params {
    pub fn parse(job: &JobEnvelope) -> Result<Self, HandlerError> {
        let p: Params = access::payload(job)?;
        let distinct = p.efectivo_ids.iter().collect::<std::collections::HashSet<_>>().len();
        if p.efectivo_ids.is_empty() || p.efectivo_ids.len() > 50 || distinct != p.efectivo_ids.len() {
            return Err(super::fields::invalid(
                "efectivo_ids",
                "invalid_ids",
                "efectivo_ids must be 1 to 50 distinct ids",
            ));
        }
        Ok(p)
    }
}

/// A live efectivo, locked.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Unit {
    pub id: i64,
    pub usuario_id: i64,
    pub disponibilidad: String,
}

/// Locks the live efectivos `ids` in id order; any missing or deleted is 404.
pub async fn lock_units(tx: &mut Tx<'_>, ids: &[i64]) -> Result<Vec<Unit>, HandlerError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let units: Vec<Unit> = sqlx::query_as(
        "SELECT id, usuario_id, disponibilidad::text AS disponibilidad FROM efectivos
         WHERE id = ANY($1) AND deleted_at IS NULL ORDER BY id FOR UPDATE",
    )
    .bind(ids)
    .fetch_all(&mut **tx)
    .await?;
    let missing: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| !units.iter().any(|u| u.id == *id))
        .collect();
    if !missing.is_empty() {
        return Err(HandlerError::Rejected(JobError {
            http_status: 404,
            error: "not_found".into(),
            message: format!("efectivo {missing:?} not found"),
            details: Some(json!({ "efectivo_ids": missing })),
        }));
    }
    Ok(units)
}

/// Units out of service or unavailable cannot take work (§6.3).
pub fn ensure_available(units: &[Unit]) -> Result<(), HandlerError> {
    let refused: Vec<_> = units
        .iter()
        .filter(|u| matches!(u.disponibilidad.as_str(), "fuera_servicio" | "no_disponible"))
        .map(|u| json!({ "efectivo_id": u.id, "disponibilidad": u.disponibilidad }))
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    let ids: Vec<_> = refused.iter().map(|r| r["efectivo_id"].clone()).collect();
    Err(HandlerError::conflict(
        "efectivo_unavailable",
        "some efectivos are out of service or unavailable",
        json!({ "efectivo_ids": ids, "efectivos": refused }),
    ))
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
    let new_ids: Vec<i64> = p
        .efectivo_ids
        .iter()
        .copied()
        .filter(|id| !before.efectivos_asignados.contains(id))
        .collect();
    let units = lock_units(&mut tx, &new_ids).await?;
    ensure_available(&units)?;
    if !units.is_empty() {
        sqlx::query(
            "INSERT INTO tarea_efectivos (tarea_id, efectivo_id, asignado_por_usuario_id)
             SELECT $1, unnest($2::bigint[]), $3 ON CONFLICT DO NOTHING",
        )
        .bind(p.tarea_id)
        .bind(&new_ids)
        .bind(actor.usuario_id)
        .execute(&mut *tx)
        .await?;
        if matches!(locked.estado.as_str(), "en_curso" | "pausada") {
            let cause = Cause {
                tarea_id: p.tarea_id,
                actor_usuario_id: Some(actor.usuario_id),
                job_id: job.job_id,
                request_id: job.request_id.as_deref(),
                client: job.client.as_ref(),
                motivo: "asignado a tarea en curso",
            };
            release::occupy(&mut tx, Some(&new_ids), cause).await?;
        }
        let after = access::read(&mut tx, p.tarea_id).await?;
        audit::record(
            &mut tx,
            Entry {
                actor_usuario_id: Some(actor.usuario_id),
                before: Some(json!({ "efectivos_asignados": before.efectivos_asignados })),
                after: Some(json!({ "efectivos_asignados": after.efectivos_asignados, "nuevos": new_ids })),
                job_id: Some(job.job_id),
                request_id: job.request_id.as_deref(),
                client: job.client.as_ref(),
                ..Entry::new("task_assigned", "tarea", p.tarea_id)
            },
        )
        .await?;
        events::task_updated(&mut tx, &before, &after, &[], job.job_id).await?;
        create::announce_assignments(&mut tx, &after, &units, job).await?;
    }
    let efectivos = release::assignees(&mut tx, p.tarea_id).await?;
    let body = json!({ "tarea_id": p.tarea_id, "efectivos_asignados": efectivos });
    access::finish(tx, job, JobResult { http_status: 200, body }).await
}
