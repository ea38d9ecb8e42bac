//! Steps 1 and 2 of §4: pick the nearest free unit and reserve it, inside the
//! caller's transaction. `SKIP LOCKED` sends a concurrent dispatch to the next
//! unit instead of queueing behind this one; the conditional UPDATE is the
//! second guard, so a unit is never booked twice.

use super::config::EmergencyConfig;
use crate::effects::Tx;

/// How many times a pick whose reservation found the unit taken is repeated.
const ATTEMPTS: usize = 3;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Unit {
    pub efectivo_id: i64,
    pub usuario_id: i64,
    pub codigo_interno: String,
    pub distance_m: f64,
}

/// KNN on the partial GiST index (disponible, not deleted). Distances are on
/// the sphere, like the `<->` ordering, so the reported figure is the one the
/// units were ranked by.
const PICK_SQL: &str = "\
SELECT e.id AS efectivo_id, e.usuario_id, e.codigo_interno,
       ST_Distance(e.ubicacion, ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography, false) AS distance_m
FROM efectivos e
WHERE e.disponibilidad = 'disponible' AND e.deleted_at IS NULL AND e.ubicacion IS NOT NULL
  AND ($3::float8 IS NULL OR ST_DWithin(e.ubicacion, ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography, $3, false))
  AND ($4::float8 IS NULL OR e.ubicacion_actualizada_en > now() - make_interval(secs => $4))
  AND e.id <> ALL($5::bigint[])
  AND EXISTS (SELECT 1 FROM usuarios u WHERE u.id = e.usuario_id AND u.deleted_at IS NULL AND u.verificado)
ORDER BY e.ubicacion <-> ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography
LIMIT 1
FOR UPDATE OF e SKIP LOCKED";

const RESERVE_SQL: &str = "\
UPDATE efectivos SET disponibilidad = 'en_tarea', ultima_actualizacion_estado = now()
WHERE id = $1 AND disponibilidad = 'disponible' AND deleted_at IS NULL";

/// The nearest free unit to (`lat`, `lng`) not in `exclude`, now `en_tarea`
/// and locked until the transaction ends; `None` when there is none.
pub async fn nearest_free(
    tx: &mut Tx<'_>,
    lat: f64,
    lng: f64,
    exclude: &[i64],
    cfg: &EmergencyConfig,
) -> Result<Option<Unit>, sqlx::Error> {
    for _ in 0..ATTEMPTS {
        let unit: Option<Unit> = sqlx::query_as(PICK_SQL)
            .bind(lat)
            .bind(lng)
            .bind(cfg.max_radius_m)
            .bind(cfg.max_position_age.map(|a| a.as_secs_f64()))
            .bind(exclude)
            .fetch_optional(&mut **tx)
            .await?;
        let Some(unit) = unit else { return Ok(None) };
        let reserved = sqlx::query(RESERVE_SQL)
            .bind(unit.efectivo_id)
            .execute(&mut **tx)
            .await?;
        if reserved.rows_affected() == 1 {
            return Ok(Some(unit));
        }
        tracing::warn!(
            efectivo_id = unit.efectivo_id,
            "picked unit was taken meanwhile; picking again"
        );
    }
    Ok(None)
}
