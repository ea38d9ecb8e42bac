//! Holds on efectivos (§3 "Release rule"). An efectivo is *held* while it has
//! a non-rechazada asignación on a live tarea that is en_curso or pausada, or
//! on an `emergencia` tarea still programada. Starting work (or assigning to
//! a running tarea) makes `disponible` units `en_tarea`; when the last hold
//! ends, an `en_tarea` unit becomes `disponible` again. Manual states
//! (`fuera_servicio`, `no_disponible`) are never overwritten.
//!
//! Both directions lock the efectivo rows (in id order) before deciding, so a
//! release racing a start on another tarea waits for it and then sees the
//! new hold, instead of freeing a unit that was just put to work.

use gad_shared::envelope::ClientInfo;
use serde_json::json;
use uuid::Uuid;

use super::events;
use crate::effects::Tx;
use crate::effects::audit::{self, Entry};

/// True when another live tarea holds the efectivo `e` (see the module doc).
macro_rules! held {
    ($e:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM tarea_efectivos h JOIN tareas ht ON ht.id = h.tarea_id
             WHERE h.efectivo_id = ", $e, " AND h.respuesta <> 'rechazada' AND ht.deleted_at IS NULL
               AND (ht.estado IN ('en_curso', 'pausada') OR (ht.tipo = 'emergencia' AND ht.estado = 'programada')))"
        )
    };
}

/// Whether the efectivo is held now (e.g. to refuse deleting it, §6.3 `efectivo_held`).
pub async fn is_held(tx: &mut Tx<'_>, efectivo_id: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(concat!("SELECT ", held!("$1")))
        .bind(efectivo_id)
        .fetch_one(&mut **tx)
        .await
}

/// Who changes a unit's state, and why; for events and audit rows.
#[derive(Debug, Clone, Copy)]
pub struct Cause<'a> {
    pub tarea_id: i64,
    pub actor_usuario_id: Option<i64>,
    pub job_id: Uuid,
    pub request_id: Option<&'a str>,
    pub client: Option<&'a ClientInfo>,
    pub motivo: &'a str,
}

/// The non-rechazada assignees of the tarea (all, or those in `only`) that
/// are `disponible` become `en_tarea`. Returns the units changed.
pub async fn occupy(tx: &mut Tx<'_>, only: Option<&[i64]>, cause: Cause<'_>) -> Result<Vec<i64>, sqlx::Error> {
    let candidates: Vec<i64> = sqlx::query_scalar(
        "SELECT e.id FROM efectivos e JOIN tarea_efectivos te ON te.efectivo_id = e.id
         WHERE te.tarea_id = $1 AND te.respuesta <> 'rechazada' AND e.deleted_at IS NULL
           AND ($2::bigint[] IS NULL OR e.id = ANY($2))
         ORDER BY e.id FOR UPDATE OF e",
    )
    .bind(cause.tarea_id)
    .bind(only)
    .fetch_all(&mut **tx)
    .await?;
    let changed: Vec<i64> = sqlx::query_scalar(
        "UPDATE efectivos SET disponibilidad = 'en_tarea', ultima_actualizacion_estado = now()
         WHERE id = ANY($1) AND disponibilidad = 'disponible' RETURNING id",
    )
    .bind(&candidates)
    .fetch_all(&mut **tx)
    .await?;
    announce(tx, &changed, "disponible", "en_tarea", cause).await?;
    Ok(changed)
}

/// Ends the holds of `efectivo_ids` that nothing else keeps: each `en_tarea`
/// unit without a remaining hold becomes `disponible`. Call it after the
/// change that ended a hold (finish, cancel, delete, unassign, decline).
pub async fn release(tx: &mut Tx<'_>, efectivo_ids: &[i64], cause: Cause<'_>) -> Result<Vec<i64>, sqlx::Error> {
    if efectivo_ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query("SELECT id FROM efectivos WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(efectivo_ids)
        .execute(&mut **tx)
        .await?;
    let mut changed: Vec<i64> = sqlx::query_scalar(concat!(
        "UPDATE efectivos e SET disponibilidad = 'disponible', ultima_actualizacion_estado = now()
         WHERE e.id = ANY($1) AND e.disponibilidad = 'en_tarea' AND NOT ",
        held!("e.id"),
        " RETURNING e.id"
    ))
    .bind(efectivo_ids)
    .fetch_all(&mut **tx)
    .await?;
    changed.sort_unstable();
    announce(tx, &changed, "en_tarea", "disponible", cause).await?;
    Ok(changed)
}

/// All assignees of a tarea, whatever their respuesta.
pub async fn assignees(tx: &mut Tx<'_>, tarea_id: i64) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT efectivo_id FROM tarea_efectivos WHERE tarea_id = $1 ORDER BY efectivo_id")
        .bind(tarea_id)
        .fetch_all(&mut **tx)
        .await
}

async fn announce(tx: &mut Tx<'_>, ids: &[i64], from: &str, to: &str, cause: Cause<'_>) -> Result<(), sqlx::Error> {
    for &id in ids {
        events::efectivo_status_changed(tx, id, from, to, cause.tarea_id, cause.motivo, cause.job_id).await?;
        audit::record(
            tx,
            Entry {
                actor_usuario_id: cause.actor_usuario_id,
                before: Some(json!({ "disponibilidad": from })),
                after: Some(json!({ "disponibilidad": to, "tarea_id": cause.tarea_id, "motivo": cause.motivo })),
                job_id: Some(cause.job_id),
                request_id: cause.request_id,
                client: cause.client,
                ..Entry::new("disponibilidad_changed", "efectivo", id)
            },
        )
        .await?;
    }
    Ok(())
}
