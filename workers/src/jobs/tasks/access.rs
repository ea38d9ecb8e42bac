//! What every task job does first: open its transaction, step aside when an
//! earlier delivery already committed, load the actor, lock the tarea, and
//! decide what the actor may do with it (§1 roles, §3 "Who may").

use gad_shared::envelope::JobEnvelope;
use gad_shared::job::JobResult;
use serde::de::DeserializeOwned;

use super::super::{HandlerContext, HandlerError};
use crate::effects::actor::{self, Actor};
use crate::effects::{Tx, job_guard};
use gad_shared::error_body::FieldError;

pub enum Begun {
    /// An earlier delivery committed: its result is the answer.
    Done(JobResult),
    Run(Tx<'static>, Actor),
}

/// Transaction, job guard and actor. A job with no submitter, or whose
/// submitter is gone or disabled, may do nothing.
pub async fn begin(ctx: &HandlerContext, job: &JobEnvelope) -> Result<Begun, HandlerError> {
    let mut tx = ctx.db.begin().await?;
    if let Some(prior) = job_guard::lock(&mut tx, job.job_id).await? {
        return Ok(Begun::Done(prior));
    }
    let Some(usuario) = job.submitted_by else {
        return Err(HandlerError::forbidden());
    };
    let actor = actor::load(&mut tx, usuario)
        .await?
        .ok_or_else(HandlerError::forbidden)?;
    Ok(Begun::Run(tx, actor))
}

/// Records the job's success with its effects and commits both.
pub async fn finish(mut tx: Tx<'static>, job: &JobEnvelope, result: JobResult) -> Result<JobResult, HandlerError> {
    job_guard::complete(&mut tx, job.job_id, &result).await?;
    tx.commit().await?;
    Ok(result)
}

/// The typed payload of a job; a payload that does not fit is the publisher's bug.
pub fn payload<T: DeserializeOwned>(job: &JobEnvelope) -> Result<T, HandlerError> {
    serde_json::from_value(job.payload.clone())
        .map_err(|e| HandlerError::Invalid(vec![FieldError::new("payload", "invalid", e.to_string())]))
}

/// The columns a job decides on, read under the row lock.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Locked {
    pub id: i64,
    pub codigo: String,
    pub estado: String,
    pub tipo: String,
    pub delegado_usuario_id: i64,
    pub creado_por_usuario_id: i64,
}

/// `SELECT … FOR UPDATE` of a live tarea: concurrent jobs on one tarea
/// serialise here. `None` when it does not exist or is deleted.
pub async fn lock(tx: &mut Tx<'_>, tarea_id: i64) -> Result<Option<Locked>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, codigo, estado::text AS estado, tipo::text AS tipo, delegado_usuario_id, creado_por_usuario_id
         FROM tareas WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
    )
    .bind(tarea_id)
    .fetch_optional(&mut **tx)
    .await
}

/// How the actor stands towards one tarea.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub delegado: bool,
    /// The actor's efectivo has an asignación on it (any respuesta).
    pub assigned: bool,
    /// … one that is not `rechazada`.
    pub assigned_active: bool,
}

impl Standing {
    /// §1 "own task": what a nivel 1 actor may see at all.
    pub fn own(&self) -> bool {
        self.delegado || self.assigned
    }
    /// §3 "as start": delegado or a non-rechazada assignee.
    pub fn may_work(&self) -> bool {
        self.delegado || self.assigned_active
    }
}

pub async fn standing(tx: &mut Tx<'_>, t: &Locked, actor: &Actor) -> Result<Standing, sqlx::Error> {
    let (assigned, assigned_active): (bool, bool) = sqlx::query_as(
        "SELECT count(*) > 0, count(*) FILTER (WHERE respuesta <> 'rechazada') > 0
         FROM tarea_efectivos WHERE tarea_id = $1 AND efectivo_id = $2",
    )
    .bind(t.id)
    .bind(actor.efectivo_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Standing {
        delegado: t.delegado_usuario_id == actor.usuario_id,
        assigned,
        assigned_active,
    })
}

/// Locks the tarea and hides it from a nivel 1 actor who does not own it
/// (404, so existence is not revealed, §3).
pub async fn lock_visible(tx: &mut Tx<'_>, tarea_id: i64, actor: &Actor) -> Result<(Locked, Standing), HandlerError> {
    let t = lock(tx, tarea_id)
        .await?
        .ok_or_else(|| HandlerError::not_found("tarea"))?;
    let s = standing(tx, &t, actor).await?;
    if !actor.is_supervisor() && !s.own() {
        return Err(HandlerError::not_found("tarea"));
    }
    Ok((t, s))
}

/// Field edits and assignment changes are refused on finalizada and cancelada.
pub fn ensure_open(t: &Locked) -> Result<(), HandlerError> {
    if gad_shared::domain::tarea::is_terminal(&t.estado) {
        return Err(HandlerError::conflict(
            "task_closed",
            format!("tarea {} is {}", t.codigo, t.estado),
            serde_json::json!({ "estado_actual": t.estado }),
        ));
    }
    Ok(())
}

/// The read model inside the transaction; the row was just locked or written.
pub async fn read(tx: &mut Tx<'_>, tarea_id: i64) -> Result<gad_shared::domain::tarea::Tarea, HandlerError> {
    gad_shared::domain::tarea::find_any(&mut **tx, tarea_id)
        .await?
        .ok_or_else(|| HandlerError::not_found("tarea"))
}
