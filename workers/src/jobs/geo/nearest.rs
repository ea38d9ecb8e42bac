//! `geo.nearest` (§4, "Nearest query"): the k nearest available units,
//! nearest first, without reserving any.

use chrono::{DateTime, Utc};
use gad_shared::error_body::FieldError;
use gad_shared::job::JobResult;
use serde::{Deserialize, Serialize};

use super::super::{HandlerContext, HandlerError};

#[derive(Debug, Deserialize)]
pub struct Params {
    pub lat: f64,
    pub lng: f64,
    #[serde(default = "default_k")]
    pub k: i64,
    #[serde(default)]
    pub radius_m: Option<i64>,
}

fn default_k() -> i64 {
    5
}

impl Params {
    /// Ingress validated already; a job published straight to the queue was not.
    pub fn parse(payload: &serde_json::Value) -> Result<Self, HandlerError> {
        let p: Params = serde_json::from_value(payload.clone())
            .map_err(|e| HandlerError::Invalid(vec![FieldError::new("payload", "invalid", e.to_string())]))?;
        let mut errors = Vec::new();
        if !(p.lat.is_finite() && (-90.0..=90.0).contains(&p.lat)) {
            errors.push(FieldError::new("lat", "out_of_range", "lat must be between -90 and 90"));
        }
        if !(p.lng.is_finite() && (-180.0..=180.0).contains(&p.lng)) {
            errors.push(FieldError::new(
                "lng",
                "out_of_range",
                "lng must be between -180 and 180",
            ));
        }
        if !(1..=50).contains(&p.k) {
            errors.push(FieldError::new("k", "out_of_range", "k must be between 1 and 50"));
        }
        if p.radius_m.is_some_and(|r| !(100..=100_000).contains(&r)) {
            errors.push(FieldError::new(
                "radius_m",
                "out_of_range",
                "radius_m must be between 100 and 100000",
            ));
        }
        if errors.is_empty() {
            Ok(p)
        } else {
            Err(HandlerError::Invalid(errors))
        }
    }
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Item {
    pub efectivo_id: i64,
    pub codigo_interno: String,
    pub usuario_id: i64,
    pub distance_m: f64,
    pub lat: f64,
    pub lng: f64,
    pub disponibilidad: String,
    #[serde(with = "gad_shared::time::option_millis")]
    pub ubicacion_actualizada_en: Option<DateTime<Utc>>,
}

/// KNN on the partial GiST index (disponible, not deleted). `<->` on
/// geography orders by sphere distance, so the reported distance is the
/// sphere distance too: the list is then sorted by the figure it shows.
const NEAREST_SQL: &str = "\
SELECT id AS efectivo_id, codigo_interno, usuario_id,
       ST_Distance(ubicacion, ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography, false) AS distance_m,
       ST_Y(ubicacion::geometry) AS lat, ST_X(ubicacion::geometry) AS lng,
       disponibilidad::text AS disponibilidad, ubicacion_actualizada_en
FROM efectivos
WHERE disponibilidad = 'disponible' AND deleted_at IS NULL AND ubicacion IS NOT NULL
  AND ($4::float8 IS NULL OR ST_DWithin(ubicacion, ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography, $4, false))
ORDER BY ubicacion <-> ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography
LIMIT $3";

pub async fn query(db: &sqlx::PgPool, p: &Params) -> Result<Vec<Item>, sqlx::Error> {
    sqlx::query_as::<_, Item>(NEAREST_SQL)
        .bind(p.lat)
        .bind(p.lng)
        .bind(p.k)
        .bind(p.radius_m.map(|r| r as f64))
        .fetch_all(db)
        .await
}

pub async fn run(ctx: &HandlerContext, payload: &serde_json::Value) -> Result<JobResult, HandlerError> {
    let params = Params::parse(payload)?;
    let items = query(&ctx.knn_db, &params).await?;
    Ok(JobResult {
        http_status: 200,
        body: serde_json::json!({ "items": items }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_rules_match_the_http_rules() {
        assert!(
            Params::parse(&serde_json::json!({"lat": -34.6, "lng": -58.4}))
                .is_ok_and(|p| p.k == 5 && p.radius_m.is_none())
        );
        let bad = Params::parse(&serde_json::json!({"lat": 95.0, "lng": -181.0, "k": 51, "radius_m": 50}));
        let Err(HandlerError::Invalid(fields)) = bad else {
            panic!("expected invalid")
        };
        let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["lat", "lng", "k", "radius_m"]);
        assert!(matches!(
            Params::parse(&serde_json::json!({"lat": "x"})),
            Err(HandlerError::Invalid(_))
        ));
    }
}
