//! The periodic loop that drives timers whose deadlines are data in
//! PostgreSQL (architecture.md), so they survive restarts:
//!
//! - emergency asignaciones still `pendiente` past `EMERGENCY_ACK_TIMEOUT`
//!   are re-dispatched (§4), and their unit is reminded once at half-time;
//! - a location update held back by the 2 s event window (§5) is announced
//!   when the window ends.
//!
//! Every worker process runs the loop. Due rows are taken with
//! `FOR UPDATE SKIP LOCKED`, one transaction per row, so processes share the
//! work and no row is handled twice.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::jobs::HandlerError;
use crate::jobs::efectivos::location::{self, EVENT_EVERY};
use crate::jobs::emergency::config::{self, EmergencyConfig};
use crate::jobs::emergency::notify::{self, Assigned};
use crate::jobs::emergency::redispatch::{Reason, redispatch_for};
use crate::settings::WorkersSection;

/// Rows handled per kind per tick; the rest wait for the next tick.
const BATCH: usize = 200;

/// Publishes the emergency settings for the handlers, then returns the loop.
/// Not `async`: the settings are in place before the caller starts any consumer.
pub fn start(
    db: PgPool,
    settings: &WorkersSection,
    cancel: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static {
    let cfg = EmergencyConfig {
        max_radius_m: settings.emergency_max_radius_m,
        max_position_age: settings.emergency_max_position_age,
        ack_timeout: settings.emergency_ack_timeout.max(Duration::from_secs(1)),
    };
    config::set(cfg);
    run(
        db,
        settings.timers_interval.max(Duration::from_millis(50)),
        cfg.ack_timeout,
        cancel,
    )
}

pub async fn run(db: PgPool, interval: Duration, ack_timeout: Duration, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        match tick_once(&db, ack_timeout).await {
            Ok(done) if done != Tick::default() => tracing::debug!(?done, "timers fired"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "timers tick failed; retrying next tick"),
        }
    }
}

/// What one tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    pub redispatched: usize,
    pub reminded: usize,
    pub locations: usize,
}

pub async fn tick_once(db: &PgPool, ack_timeout: Duration) -> Result<Tick, sqlx::Error> {
    Ok(Tick {
        redispatched: ack_timeouts(db, ack_timeout).await?,
        reminded: reminders(db, ack_timeout / 2).await?,
        locations: pending_locations(db).await?,
    })
}

/// The dispatched (not hand-assigned) emergency asignaciones waiting for an
/// answer for longer than `$1` seconds; the tarea row is the lock, as in every
/// task job (tarea first).
const DUE_SQL: &str = "\
SELECT t.id AS tarea_id, te.efectivo_id
FROM tareas t JOIN tarea_efectivos te ON te.tarea_id = t.id
WHERE t.tipo = 'emergencia' AND t.estado = 'programada' AND t.deleted_at IS NULL
  AND te.respuesta = 'pendiente' AND te.asignado_por_usuario_id IS NULL
  AND te.asignado_en < now() - make_interval(secs => $1)
  AND t.id <> ALL($2::bigint[])
ORDER BY te.asignado_en
LIMIT 1
FOR UPDATE OF t SKIP LOCKED";

async fn ack_timeouts(db: &PgPool, timeout: Duration) -> Result<usize, sqlx::Error> {
    let mut done = 0;
    // A row that fails for a business reason is skipped for the rest of the tick.
    let mut skip: Vec<i64> = Vec::new();
    while done + skip.len() < BATCH {
        let mut tx = db.begin().await?;
        let due: Option<(i64, i64)> = sqlx::query_as(DUE_SQL)
            .bind(timeout.as_secs_f64())
            .bind(&skip)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((tarea_id, efectivo_id)) = due else { break };
        match redispatch_for(&mut tx, tarea_id, efectivo_id, Uuid::now_v7(), Reason::AckTimeout).await {
            Ok(outcome) => {
                tx.commit().await?;
                tracing::info!(
                    tarea_id,
                    efectivo_id,
                    ?outcome,
                    "emergency not acknowledged in time; re-dispatched"
                );
                done += 1;
            }
            Err(HandlerError::Database(e)) => return Err(e),
            Err(e) => {
                tracing::warn!(tarea_id, efectivo_id, error = %e, "ack timeout not handled");
                skip.push(tarea_id);
            }
        }
    }
    Ok(done)
}

#[derive(sqlx::FromRow)]
struct Reminder {
    tarea_id: i64,
    codigo: String,
    descripcion: Option<String>,
    lat: Option<f64>,
    lng: Option<f64>,
    efectivo_id: i64,
    usuario_id: i64,
    asignado_en: DateTime<Utc>,
    distance_m: Option<f64>,
}

/// Due for the half-time reminder: pendiente past half the timeout, and no
/// reminder written since this asignación began.
const REMINDER_SQL: &str = "\
SELECT t.id AS tarea_id, t.codigo, t.descripcion,
       ST_Y(t.ubicacion::geometry) AS lat, ST_X(t.ubicacion::geometry) AS lng,
       te.efectivo_id, e.usuario_id, te.asignado_en,
       ST_Distance(e.ubicacion, t.ubicacion, false) AS distance_m
FROM tareas t JOIN tarea_efectivos te ON te.tarea_id = t.id JOIN efectivos e ON e.id = te.efectivo_id
WHERE t.tipo = 'emergencia' AND t.estado = 'programada' AND t.deleted_at IS NULL
  AND te.respuesta = 'pendiente' AND te.asignado_por_usuario_id IS NULL
  AND te.asignado_en < now() - make_interval(secs => $1)
  AND NOT EXISTS (
      SELECT 1 FROM notifications n
      WHERE n.tarea_id = t.id AND n.recipient_usuario_id = e.usuario_id AND n.kind = 'emergency_assigned'
        AND n.payload @> '{\"reminder\": true}' AND n.created_at >= te.asignado_en)
ORDER BY te.asignado_en
LIMIT 1
FOR UPDATE OF t SKIP LOCKED";

async fn reminders(db: &PgPool, half: Duration) -> Result<usize, sqlx::Error> {
    let mut done = 0;
    while done < BATCH {
        let mut tx = db.begin().await?;
        let due: Option<Reminder> = sqlx::query_as(REMINDER_SQL)
            .bind(half.as_secs_f64())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(r) = due else { break };
        // Derived from the asignación, so a second writer of the same reminder is a no-op.
        let key = format!(
            "reminder:{}:{}:{}",
            r.tarea_id,
            r.efectivo_id,
            r.asignado_en.timestamp_micros()
        );
        let event_id = Uuid::new_v5(&Uuid::NAMESPACE_OID, key.as_bytes());
        notify::emergency_assigned(
            &mut tx,
            Assigned {
                recipient_usuario_id: r.usuario_id,
                tarea_id: r.tarea_id,
                codigo: &r.codigo,
                descripcion: r.descripcion.as_deref(),
                lat: r.lat,
                lng: r.lng,
                distance_m: r.distance_m,
                reminder: true,
            },
            event_id,
        )
        .await?;
        tx.commit().await?;
        done += 1;
    }
    Ok(done)
}

#[derive(sqlx::FromRow)]
struct PendingLocation {
    id: i64,
    lat: f64,
    lng: f64,
    accuracy_m: Option<f64>,
    ubicacion_actualizada_en: DateTime<Utc>,
}

const PENDING_LOCATIONS_SQL: &str = "\
SELECT id, ST_Y(ubicacion::geometry) AS lat, ST_X(ubicacion::geometry) AS lng,
       ubicacion_precision_m::float8 AS accuracy_m, ubicacion_actualizada_en
FROM efectivos
WHERE metadata ? 'location_pending' AND deleted_at IS NULL
  AND ubicacion IS NOT NULL AND ubicacion_actualizada_en IS NOT NULL
  AND COALESCE((metadata->>'location_event_at')::timestamptz, '-infinity') <= now() - make_interval(secs => $1)
LIMIT $2
FOR UPDATE SKIP LOCKED";

async fn pending_locations(db: &PgPool) -> Result<usize, sqlx::Error> {
    let mut tx = db.begin().await?;
    let rows: Vec<PendingLocation> = sqlx::query_as(PENDING_LOCATIONS_SQL)
        .bind(EVENT_EVERY.as_secs_f64())
        .bind(BATCH as i64)
        .fetch_all(&mut *tx)
        .await?;
    for r in &rows {
        location::location_event(
            &mut tx,
            r.id,
            r.lat,
            r.lng,
            r.accuracy_m,
            r.ubicacion_actualizada_en,
            None,
        )
        .await?;
        sqlx::query(
            "UPDATE efectivos SET metadata = (metadata - 'location_pending') || jsonb_build_object('location_event_at', now())
             WHERE id = $1",
        )
        .bind(r.id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(rows.len())
}
