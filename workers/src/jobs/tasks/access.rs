//! What every task job does first: open its transaction, step aside when an
//! earlier delivery already committed, load the actor, lock the tarea, and
//! decide what the actor may do with it (§1 roles, §3 "Who may").

use gad_shared::envelope::JobEnvelope;
use gad_shared::job::JobResult;

use super::super::HandlerError;
use crate::effects::Tx;
use crate::effects::actor::Actor;

pub use crate::jobs::business::{Begun, begin, finish, payload};

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

/// Answers `http_status` with tarea `tarea_id` as it stands (a tarea made
/// earlier, by a previous delivery or a previous import), finishing the job.
pub async fn finish_with(
    mut tx: Tx<'static>,
    job: &JobEnvelope,
    tarea_id: i64,
    http_status: u16,
) -> Result<JobResult, HandlerError> {
    let body = serde_json::json!(read(&mut tx, tarea_id).await?);
    finish(tx, job, JobResult { http_status, body }).await
}
