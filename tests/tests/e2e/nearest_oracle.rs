//! The nearest query through the whole pipeline (HTTP → NATS → worker →
//! PostGIS → HTTP) agrees with a plain SQL oracle that sorts every candidate
//! by sphere distance without the KNN index.

use gad_e2e::spawn_app_on;
use gad_shared::queue::Backend;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reqwest::StatusCode;
use serde_json::Value;

/// The seeded area (domain.md §10).
const LAT: (f64, f64) = (-34.705, -34.527);
const LNG: (f64, f64) = (-58.531, -58.335);
const POINTS: usize = 50;
/// Relative tolerance of distances; also what counts as a tie.
const REL: f64 = 1e-6;

#[derive(Debug, sqlx::FromRow)]
struct OracleRow {
    id: i64,
    codigo_interno: String,
    usuario_id: i64,
    distance_m: f64,
    lat: f64,
    lng: f64,
    disponibilidad: String,
    ubicacion_actualizada_en: Option<chrono::DateTime<chrono::Utc>>,
}

/// Every available, located, live unit, sorted by sphere distance: a full
/// scan, independent of the handler's `<->` ordering.
const ORACLE_SQL: &str = "\
SELECT e.id, e.codigo_interno, e.usuario_id,
       ST_Distance(e.ubicacion, q.p, false) AS distance_m,
       ST_Y(e.ubicacion::geometry) AS lat, ST_X(e.ubicacion::geometry) AS lng,
       e.disponibilidad::text AS disponibilidad, e.ubicacion_actualizada_en
FROM efectivos e, (SELECT ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography AS p) q
WHERE e.disponibilidad = 'disponible' AND e.deleted_at IS NULL AND e.ubicacion IS NOT NULL
  AND ($4::float8 IS NULL OR ST_DWithin(e.ubicacion, q.p, $4, false))
ORDER BY ST_Distance(e.ubicacion, q.p, false), e.id
LIMIT $3";

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= REL * a.abs().max(b.abs()).max(1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nearest_matches_a_sql_oracle_at_random_points() -> anyhow::Result<()> {
    nearest_matches_the_oracle_on(Backend::Jetstream).await
}

/// The same pipeline with RabbitMQ carrying the jobs (issue 8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nearest_matches_a_sql_oracle_with_jobs_on_rabbitmq() -> anyhow::Result<()> {
    nearest_matches_the_oracle_on(Backend::Rabbitmq).await
}

async fn nearest_matches_the_oracle_on(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_app_on(backend).await?;
    let mut rng = ChaCha8Rng::seed_from_u64(20_261_128);
    let (mut empty, mut compared) = (0, 0);
    for n in 0..POINTS {
        // On the 1e-7 grid ingress keeps coordinates to (as a GPS sends them),
        // so the oracle queries exactly the point the API does.
        let lat = gad_shared::coordinates::snap(rng.random_range(LAT.0..=LAT.1));
        let lng = gad_shared::coordinates::snap(rng.random_range(LNG.0..=LNG.1));
        let k: i64 = rng.random_range(1..=50);
        let radius_m: Option<i64> = rng.random_bool(0.4).then(|| rng.random_range(100..=3_000));
        let mut path = format!("/api/v1/geo/nearest?lat={lat}&lng={lng}&k={k}");
        if let Some(r) = radius_m {
            path.push_str(&format!("&radius_m={r}"));
        }
        let what = format!("point {n}: {path}");

        let r = app
            .get_with(&path, Some(&app.supervisor.token), &[("Prefer", "wait=10")])
            .await?;
        assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.text);
        let items = r.body["items"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("{what}: no items: {}", r.text));

        // A few rows past k, so a tie at the cut-off can be recognised.
        let oracle: Vec<OracleRow> = sqlx::query_as(ORACLE_SQL)
            .bind(lat)
            .bind(lng)
            .bind(k + 5)
            .bind(radius_m.map(|r| r as f64))
            .fetch_all(&app.db)
            .await?;
        let expected = &oracle[..oracle.len().min(k as usize)];
        assert_eq!(items.len(), expected.len(), "{what}: wrong number of items");
        if items.is_empty() {
            empty += 1;
        }
        for (i, (item, want)) in items.iter().zip(expected).enumerate() {
            let distance = item["distance_m"].as_f64().unwrap_or(f64::NAN);
            assert!(
                close(distance, want.distance_m),
                "{what}: item {i} at {distance} m, oracle {} m",
                want.distance_m
            );
            if let Some(r) = radius_m {
                assert!(
                    distance <= r as f64 * (1.0 + REL),
                    "{what}: item {i} at {distance} m is outside {r} m"
                );
            }
            let id = item["efectivo_id"].as_i64().unwrap_or_default();
            // Position by position, except that units at the same distance may swap.
            let row = if id == want.id {
                want
            } else {
                oracle
                    .iter()
                    .find(|o| o.id == id && close(o.distance_m, want.distance_m))
                    .unwrap_or_else(|| panic!("{what}: item {i} is unit {id}, oracle has {} (no tie)", want.id))
            };
            assert_item_is(item, row, &what);
            compared += 1;
        }
    }
    assert!(
        empty < POINTS / 2,
        "{empty} of {POINTS} answers were empty: the oracle compared too little"
    );
    assert!(compared >= 300, "only {compared} units compared");
    app.stop().await
}

fn assert_item_is(item: &Value, row: &OracleRow, what: &str) {
    let ctx = format!("{what}: unit {}", row.id);
    assert_eq!(item["codigo_interno"], row.codigo_interno.as_str(), "{ctx}");
    assert_eq!(item["usuario_id"], row.usuario_id, "{ctx}");
    assert_eq!(item["disponibilidad"], row.disponibilidad.as_str(), "{ctx}");
    let lat = item["lat"].as_f64().unwrap_or(f64::NAN);
    let lng = item["lng"].as_f64().unwrap_or(f64::NAN);
    assert!((lat - row.lat).abs() <= 1e-9, "{ctx}: lat {lat} vs {}", row.lat);
    assert!((lng - row.lng).abs() <= 1e-9, "{ctx}: lng {lng} vs {}", row.lng);
    let shown = item["ubicacion_actualizada_en"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    match (shown, row.ubicacion_actualizada_en) {
        (Some(shown), Some(stored)) => {
            let diff = (shown.to_utc() - stored).num_microseconds().unwrap_or(i64::MAX).abs();
            assert!(diff < 1_000, "{ctx}: ubicacion_actualizada_en {shown} vs {stored}");
        }
        (None, None) => {}
        (shown, stored) => panic!("{ctx}: ubicacion_actualizada_en {shown:?} vs {stored:?}"),
    }
}
