//! Who may act on an efectivo, checked by the worker against the current rows:
//! its own usuario, or nivel ≥ 2 (nivel 3 for the administrative jobs).

use chrono::{DateTime, Utc};
use gad_shared::envelope::JobEnvelope;

use crate::effects::Tx;
use crate::effects::actor::{self, Actor};
use crate::jobs::HandlerError;

/// The submitter, active; a job without one (or from a usuario since
/// disabled) is refused.
pub async fn actor(tx: &mut Tx<'_>, job: &JobEnvelope) -> Result<Actor, HandlerError> {
    let id = job.submitted_by.ok_or_else(HandlerError::forbidden)?;
    actor::load(tx, id).await?.ok_or_else(HandlerError::forbidden)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Locked {
    pub id: i64,
    pub usuario_id: i64,
    pub disponibilidad: String,
    pub ubicacion_actualizada_en: Option<DateTime<Utc>>,
    pub location_event_at: Option<DateTime<Utc>>,
}

/// Locks a live efectivo the actor may act on. A nivel 1 actor gets 403 for
/// any unit but its own, whether or not it exists; nivel ≥ 2 gets 404 for a
/// missing or deleted one.
pub async fn lock_for(tx: &mut Tx<'_>, actor: &Actor, id: i64) -> Result<Locked, HandlerError> {
    if !actor.is_supervisor() && actor.efectivo_id != Some(id) {
        return Err(HandlerError::forbidden());
    }
    lock(tx, id).await?.ok_or_else(|| HandlerError::not_found("efectivo"))
}

pub async fn lock(tx: &mut Tx<'_>, id: i64) -> Result<Option<Locked>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{LOCKED} WHERE id = $1 AND deleted_at IS NULL FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await
}

/// [`lock`] by the unit's `codigo_interno` (what importers know it by).
pub async fn lock_by_codigo(tx: &mut Tx<'_>, codigo_interno: &str) -> Result<Option<Locked>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{LOCKED} WHERE codigo_interno = $1 AND deleted_at IS NULL FOR UPDATE"
    )))
    .bind(codigo_interno)
    .fetch_optional(&mut **tx)
    .await
}

const LOCKED: &str = "SELECT id, usuario_id, disponibilidad::text AS disponibilidad, ubicacion_actualizada_en,
        (metadata->>'location_event_at')::timestamptz AS location_event_at
 FROM efectivos";

/// nivel 3 only.
pub fn require_admin(actor: &Actor) -> Result<(), HandlerError> {
    if actor.is_admin() {
        Ok(())
    } else {
        Err(HandlerError::forbidden())
    }
}
