//! `geo.map_view` (§5): live tareas and efectivos around a point, each set
//! filtered with `ST_DWithin` on geography (GiST), nearest first, at most
//! `limit` rows per set; one more row is read to tell whether a set was cut.

use chrono::{DateTime, Utc};
use gad_shared::domain::efectivo::DISPONIBILIDADES;
use gad_shared::error_body::FieldError;
use gad_shared::job::JobResult;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::super::{HandlerContext, HandlerError};

#[derive(Debug, Deserialize)]
pub struct Params {
    pub center_lat: f64,
    pub center_lng: f64,
    #[serde(default = "default_radius")]
    pub radius_m: i64,
    #[serde(default = "default_limit")]
    pub limit: i64,
    #[serde(default)]
    pub disponibilidad: Option<String>,
}

fn default_radius() -> i64 {
    10_000
}

fn default_limit() -> i64 {
    500
}

impl Params {
    /// Ingress validated already; a job published straight to the queue was not.
    pub fn parse(payload: &serde_json::Value) -> Result<Self, HandlerError> {
        let p: Params = serde_json::from_value(payload.clone())
            .map_err(|e| HandlerError::Invalid(vec![FieldError::new("payload", "invalid", e.to_string())]))?;
        let mut errors = Vec::new();
        if !(p.center_lat.is_finite() && (-90.0..=90.0).contains(&p.center_lat)) {
            errors.push(FieldError::new(
                "center_lat",
                "out_of_range",
                "center_lat must be between -90 and 90",
            ));
        }
        if !(p.center_lng.is_finite() && (-180.0..=180.0).contains(&p.center_lng)) {
            errors.push(FieldError::new(
                "center_lng",
                "out_of_range",
                "center_lng must be between -180 and 180",
            ));
        }
        if !(100..=100_000).contains(&p.radius_m) {
            errors.push(FieldError::new(
                "radius_m",
                "out_of_range",
                "radius_m must be between 100 and 100000",
            ));
        }
        if !(1..=2000).contains(&p.limit) {
            errors.push(FieldError::new(
                "limit",
                "out_of_range",
                "limit must be between 1 and 2000",
            ));
        }
        if p.disponibilidad
            .as_deref()
            .is_some_and(|d| !DISPONIBILIDADES.contains(&d))
        {
            errors.push(FieldError::new(
                "disponibilidad",
                "invalid_choice",
                "not an estado_disponibilidad",
            ));
        }
        if errors.is_empty() {
            Ok(p)
        } else {
            Err(HandlerError::Invalid(errors))
        }
    }
}

/// The labels of prioridad 1–5 on the map.
pub fn priority_label(prioridad: i16) -> &'static str {
    match prioridad {
        1 => "BAJA",
        2 => "MEDIA",
        3 => "ALTA",
        4 => "URGENTE",
        _ => "CRITICA",
    }
}

#[derive(Debug, sqlx::FromRow)]
struct TareaRow {
    lat: f64,
    lng: f64,
    uuid: Uuid,
    id: i64,
    codigo: String,
    titulo: String,
    estado: String,
    prioridad: i16,
    distance_m: f64,
}

#[derive(Debug, Serialize)]
pub struct TareaItem {
    pub lat: f64,
    pub lng: f64,
    pub entity_id: Uuid,
    pub tarea_id: i64,
    pub codigo: String,
    pub titulo: String,
    pub estado: String,
    pub prioridad: i16,
    pub priority: &'static str,
    pub distance_m: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct EfectivoRow {
    lat: f64,
    lng: f64,
    uuid: Uuid,
    id: i64,
    codigo_interno: String,
    disponibilidad: String,
    ubicacion_actualizada_en: Option<DateTime<Utc>>,
    distance_m: f64,
}

#[derive(Debug, Serialize)]
pub struct EfectivoItem {
    pub lat: f64,
    pub lng: f64,
    pub entity_id: Uuid,
    pub efectivo_id: i64,
    pub codigo_interno: String,
    pub disponibilidad: String,
    #[serde(with = "gad_shared::time::option_millis")]
    pub ubicacion_actualizada_en: Option<DateTime<Utc>>,
    pub distance_m: i64,
}

/// Distances on the sphere, like the `<->` ordering, so the list is sorted by
/// the figure it shows. Ordered by `<->` alone so the GiST index yields rows
/// nearest first and the scan stops after `limit + 1` (a second sort key would
/// make PostgreSQL read and sort every row within the radius).
const TAREAS_SQL: &str = "\
SELECT ST_Y(t.ubicacion::geometry) AS lat, ST_X(t.ubicacion::geometry) AS lng, t.uuid, t.id, t.codigo, t.titulo,
       t.estado::text AS estado, t.prioridad,
       ST_Distance(t.ubicacion, c.p, false) AS distance_m
FROM tareas t, (SELECT ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography AS p) c
WHERE t.deleted_at IS NULL AND t.ubicacion IS NOT NULL AND t.estado IN ('programada', 'en_curso', 'pausada')
  AND ST_DWithin(t.ubicacion, c.p, $3, false)
ORDER BY t.ubicacion <-> c.p
LIMIT $4";

const EFECTIVOS_SQL: &str = "\
SELECT ST_Y(e.ubicacion::geometry) AS lat, ST_X(e.ubicacion::geometry) AS lng, e.uuid, e.id, e.codigo_interno,
       e.disponibilidad::text AS disponibilidad, e.ubicacion_actualizada_en,
       ST_Distance(e.ubicacion, c.p, false) AS distance_m
FROM efectivos e, (SELECT ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography AS p) c
WHERE e.deleted_at IS NULL AND e.ubicacion IS NOT NULL
  AND ($5::text IS NULL OR e.disponibilidad = $5::estado_disponibilidad)
  AND ST_DWithin(e.ubicacion, c.p, $3, false)
ORDER BY e.ubicacion <-> c.p
LIMIT $4";

/// Rows of one set, and whether there were more than `limit`.
fn cut<T>(mut rows: Vec<T>, limit: i64) -> (Vec<T>, bool) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let truncated = rows.len() > limit;
    rows.truncate(limit);
    (rows, truncated)
}

pub async fn run(ctx: &HandlerContext, payload: &serde_json::Value) -> Result<JobResult, HandlerError> {
    let p = Params::parse(payload)?;
    let radius = p.radius_m as f64;
    let mut tx = ctx.knn_db.begin().await?;
    // A custom plan, made for the actual radius, may prefer reading every row
    // in range and sorting them (seconds at bench scale); the generic plan
    // walks the GiST index nearest first and stops at the limit.
    sqlx::query("SET LOCAL plan_cache_mode = force_generic_plan")
        .execute(&mut *tx)
        .await?;
    let tareas = sqlx::query_as::<_, TareaRow>(TAREAS_SQL)
        .bind(p.center_lat)
        .bind(p.center_lng)
        .bind(radius)
        .bind(p.limit + 1)
        .fetch_all(&mut *tx)
        .await?;
    let efectivos = sqlx::query_as::<_, EfectivoRow>(EFECTIVOS_SQL)
        .bind(p.center_lat)
        .bind(p.center_lng)
        .bind(radius)
        .bind(p.limit + 1)
        .bind(p.disponibilidad.as_deref())
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    let (tareas, tareas_cut) = cut(tareas, p.limit);
    let (efectivos, efectivos_cut) = cut(efectivos, p.limit);
    let tareas: Vec<TareaItem> = tareas
        .into_iter()
        .map(|t| TareaItem {
            lat: t.lat,
            lng: t.lng,
            entity_id: t.uuid,
            tarea_id: t.id,
            codigo: t.codigo,
            titulo: t.titulo,
            estado: t.estado,
            prioridad: t.prioridad,
            priority: priority_label(t.prioridad),
            distance_m: t.distance_m.round() as i64,
        })
        .collect();
    let efectivos: Vec<EfectivoItem> = efectivos
        .into_iter()
        .map(|e| EfectivoItem {
            lat: e.lat,
            lng: e.lng,
            entity_id: e.uuid,
            efectivo_id: e.id,
            codigo_interno: e.codigo_interno,
            disponibilidad: e.disponibilidad,
            ubicacion_actualizada_en: e.ubicacion_actualizada_en,
            distance_m: e.distance_m.round() as i64,
        })
        .collect();
    Ok(JobResult {
        http_status: 200,
        body: json!({
            "center": { "lat": p.center_lat, "lng": p.center_lng },
            "radius_m": p.radius_m,
            "truncated": { "tareas": tareas_cut, "efectivos": efectivos_cut },
            "usuarios": [],
            "tareas": tareas,
            "efectivos": efectivos,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_cut() {
        assert_eq!(
            [1, 2, 3, 4, 5].map(priority_label),
            ["BAJA", "MEDIA", "ALTA", "URGENTE", "CRITICA"]
        );
        assert_eq!(cut(vec![1, 2, 3], 2), (vec![1, 2], true));
        assert_eq!(cut(vec![1, 2], 2), (vec![1, 2], false));
    }

    #[test]
    fn defaults_and_rules() {
        assert!(
            Params::parse(&json!({ "center_lat": -34.6, "center_lng": -58.4 }))
                .is_ok_and(|p| p.radius_m == 10_000 && p.limit == 500 && p.disponibilidad.is_none())
        );
        let Err(HandlerError::Invalid(f)) = Params::parse(
            &json!({ "center_lat": 91.0, "center_lng": 0.0, "radius_m": 99, "limit": 2001, "disponibilidad": "x" }),
        ) else {
            panic!("expected invalid")
        };
        assert_eq!(f.len(), 4);
    }
}
