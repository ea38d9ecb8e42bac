//! The map view (§5) through the whole pipeline agrees with a SQL oracle that
//! filters and sorts by `ST_Distance` without the GiST indexes.

use std::collections::HashMap;

use gad_e2e::{TestApp, spawn_app};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::efectivos::{call, invalid_fields};
use crate::error_shape::assert_error;

const LAT: (f64, f64) = (-34.705, -34.527);
const LNG: (f64, f64) = (-58.531, -58.335);
const POINTS: usize = 25;
const DISPONIBILIDADES: [&str; 4] = ["disponible", "en_tarea", "fuera_servicio", "no_disponible"];

#[derive(Debug, sqlx::FromRow)]
struct Item {
    id: i64,
    uuid: uuid::Uuid,
    label: String,
    extra: String,
    prioridad: Option<i16>,
    lat: f64,
    lng: f64,
    distance_m: f64,
}

const TAREAS_ORACLE: &str = "\
SELECT t.id, t.uuid, t.codigo AS label, t.titulo || '|' || t.estado::text AS extra, t.prioridad,
       ST_Y(t.ubicacion::geometry) AS lat, ST_X(t.ubicacion::geometry) AS lng,
       ST_Distance(t.ubicacion, q.p, false) AS distance_m
FROM tareas t, (SELECT ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography AS p) q
WHERE t.deleted_at IS NULL AND t.ubicacion IS NOT NULL AND t.estado IN ('programada', 'en_curso', 'pausada')
  AND ST_Distance(t.ubicacion, q.p, false) <= $3
ORDER BY 8, t.id";

const EFECTIVOS_ORACLE: &str = "\
SELECT e.id, e.uuid, e.codigo_interno AS label,
       e.disponibilidad::text || '|' || COALESCE(to_char(e.ubicacion_actualizada_en AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), '') AS extra,
       NULL::smallint AS prioridad,
       ST_Y(e.ubicacion::geometry) AS lat, ST_X(e.ubicacion::geometry) AS lng,
       ST_Distance(e.ubicacion, q.p, false) AS distance_m
FROM efectivos e, (SELECT ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography AS p) q
WHERE e.deleted_at IS NULL AND e.ubicacion IS NOT NULL
  AND ($4::text IS NULL OR e.disponibilidad::text = $4)
  AND ST_Distance(e.ubicacion, q.p, false) <= $3
ORDER BY 8, e.id";

async fn view(app: &TestApp, query: &str, token: &str) -> anyhow::Result<gad_e2e::ApiResponse> {
    app.get_with(
        &format!("/api/v1/geo/map/view?{query}"),
        Some(token),
        &[("Prefer", "wait=20")],
    )
    .await
}

fn priority(p: i16) -> &'static str {
    ["BAJA", "MEDIA", "ALTA", "URGENTE", "CRITICA"][(p.clamp(1, 5) - 1) as usize]
}

/// `shown` (the API's list) against `oracle` (every match, nearest first):
/// the first `limit`, ties at equal distance allowed to swap.
fn compare(shown: &[Value], oracle: &[Item], limit: usize, tareas: bool, what: &str) {
    let expected = &oracle[..oracle.len().min(limit)];
    assert_eq!(shown.len(), expected.len(), "{what}: length");
    let by_id: HashMap<i64, &Item> = oracle.iter().map(|o| (o.id, o)).collect();
    let id_key = if tareas { "tarea_id" } else { "efectivo_id" };
    for (i, (item, want)) in shown.iter().zip(expected).enumerate() {
        let id = item[id_key].as_i64().unwrap_or_default();
        let row = by_id
            .get(&id)
            .unwrap_or_else(|| panic!("{what}: item {i} ({id}) is not a match"));
        assert!(
            (row.distance_m - want.distance_m).abs() < 1e-6,
            "{what}: item {i} is {id}, oracle has {} (no tie)",
            want.id
        );
        let distance = item["distance_m"]
            .as_i64()
            .unwrap_or_else(|| panic!("{what}: distance_m not an integer: {item}"));
        assert_eq!(distance, row.distance_m.round() as i64, "{what}: item {i}");
        assert_eq!(item["entity_id"], row.uuid.to_string().as_str(), "{what}");
        assert!(
            (item["lat"].as_f64().unwrap_or(f64::NAN) - row.lat).abs() < 1e-9,
            "{what}"
        );
        assert!(
            (item["lng"].as_f64().unwrap_or(f64::NAN) - row.lng).abs() < 1e-9,
            "{what}"
        );
        if tareas {
            assert_eq!(item.as_object().map(|o| o.len()), Some(10), "{what}: {item}");
            assert_eq!(item["codigo"], row.label.as_str());
            assert_eq!(
                format!(
                    "{}|{}",
                    item["titulo"].as_str().unwrap_or_default(),
                    item["estado"].as_str().unwrap_or_default()
                ),
                row.extra
            );
            let p = row.prioridad.unwrap_or_default();
            assert_eq!(item["prioridad"], p);
            assert_eq!(item["priority"], priority(p));
        } else {
            assert_eq!(item.as_object().map(|o| o.len()), Some(8), "{what}: {item}");
            assert_eq!(item["codigo_interno"], row.label.as_str());
            let shown_extra = format!(
                "{}|{}",
                item["disponibilidad"].as_str().unwrap_or_default(),
                item["ubicacion_actualizada_en"].as_str().unwrap_or_default()
            );
            assert_eq!(shown_extra, row.extra, "{what}");
        }
    }
    let ds: Vec<i64> = shown.iter().filter_map(|i| i["distance_m"].as_i64()).collect();
    assert!(ds.windows(2).all(|w| w[0] <= w[1]), "{what}: not nearest first: {ds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_view_matches_a_sql_oracle() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    // Off-grid coordinates are kept to 1e-7 degrees (gad_shared::coordinates).
    let r = view(
        &app,
        "center_lat=-34.60370004&center_lng=-58.38160000000001&radius_m=500",
        &app.supervisor.token,
    )
    .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["center"], json!({ "lat": -34.6037, "lng": -58.3816 }));
    let mut rng = ChaCha8Rng::seed_from_u64(5_2026);
    let mut truncated_seen = 0;
    for n in 0..POINTS {
        // On the 1e-7 grid ingress keeps coordinates to (as a GPS sends them),
        // so the oracle queries exactly the point the API does.
        let lat = gad_shared::coordinates::snap(rng.random_range(LAT.0..=LAT.1));
        let lng = gad_shared::coordinates::snap(rng.random_range(LNG.0..=LNG.1));
        let radius: i64 = if n == 0 { 100_000 } else { rng.random_range(100..=6_000) };
        let limit: usize = if n == 0 { 2000 } else { rng.random_range(1..=60) };
        let filter = rng.random_range(0..6usize);
        let disponibilidad = DISPONIBILIDADES.get(filter).copied();
        let mut query = format!("center_lat={lat}&center_lng={lng}&radius_m={radius}&limit={limit}");
        if let Some(d) = disponibilidad {
            query.push_str(&format!("&disponibilidad={d}"));
        }
        let what = format!("point {n}: {query}");
        let r = view(&app, &query, &app.supervisor.token).await?;
        assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.text);
        let b = &r.body;
        assert_eq!(b.as_object().map(|o| o.len()), Some(6), "{what}: {b}");
        assert_eq!(b["center"], json!({ "lat": lat, "lng": lng }));
        assert_eq!(b["radius_m"], radius);
        assert_eq!(b["usuarios"], json!([]));

        let tareas: Vec<Item> = sqlx::query_as(TAREAS_ORACLE)
            .bind(lat)
            .bind(lng)
            .bind(radius as f64)
            .fetch_all(&app.db)
            .await?;
        let efectivos: Vec<Item> = sqlx::query_as(EFECTIVOS_ORACLE)
            .bind(lat)
            .bind(lng)
            .bind(radius as f64)
            .bind(disponibilidad)
            .fetch_all(&app.db)
            .await?;
        let shown_t = b["tareas"].as_array().cloned().unwrap_or_default();
        let shown_e = b["efectivos"].as_array().cloned().unwrap_or_default();
        compare(&shown_t, &tareas, limit, true, &format!("{what} tareas"));
        compare(&shown_e, &efectivos, limit, false, &format!("{what} efectivos"));
        assert_eq!(
            b["truncated"],
            json!({ "tareas": tareas.len() > limit, "efectivos": efectivos.len() > limit }),
            "{what}"
        );
        if tareas.len() > limit || efectivos.len() > limit {
            truncated_seen += 1;
        }
        if n == 0 {
            assert!(
                shown_t.len() > 100 && shown_e.len() > 100,
                "the whole area should be on the map"
            );
        }
    }
    assert!(
        truncated_seen > 3,
        "too few cut sets ({truncated_seen}): the oracle compared too little"
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_unit_shows_where_it_went_and_roles_and_validation_hold() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let unit: i64 = sqlx::query_scalar("SELECT id FROM efectivos WHERE deleted_at IS NULL ORDER BY id DESC LIMIT 1")
        .fetch_one(&app.db)
        .await?;
    // Far from the seeded area, where nothing else is.
    let r = call(
        &app,
        Method::PUT,
        &format!("/api/v1/efectivos/{unit}/location"),
        &app.supervisor.token,
        json!({ "lat": -40.0, "lng": -65.0 }),
    )
    .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = view(
        &app,
        "center_lat=-40.0005&center_lng=-65&radius_m=100",
        &app.admin.token,
    )
    .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let efectivos = r.body["efectivos"].as_array().cloned().unwrap_or_default();
    assert_eq!(efectivos.len(), 1, "{}", r.text);
    assert_eq!(efectivos[0]["efectivo_id"], unit);
    assert_eq!(efectivos[0]["distance_m"], 56, "0.0005° of latitude is about 56 m");
    assert_eq!(r.body["tareas"], json!([]));
    assert_eq!(r.body["truncated"], json!({ "tareas": false, "efectivos": false }));
    // Defaults: radius 10 km.
    let r = view(&app, "center_lat=-40&center_lng=-65", &app.supervisor.token).await?;
    assert_eq!(r.body["radius_m"], 10_000);

    let r = view(&app, "center_lat=-34.6&center_lng=-58.4", &app.efectivo.token).await?;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .get("/api/v1/geo/map/view?center_lat=-34.6&center_lng=-58.4", None)
        .await?;
    assert_error(&r, StatusCode::UNAUTHORIZED, "not_authenticated");
    let cases = [
        ("", vec![("center_lat", "required"), ("center_lng", "required")]),
        (
            "center_lat=91&center_lng=-181",
            vec![("center_lat", "out_of_range"), ("center_lng", "out_of_range")],
        ),
        (
            "center_lat=1&center_lng=1&radius_m=99&limit=0",
            vec![("radius_m", "out_of_range"), ("limit", "out_of_range")],
        ),
        (
            "center_lat=1&center_lng=1&radius_m=100001&limit=2001",
            vec![("radius_m", "out_of_range"), ("limit", "out_of_range")],
        ),
        (
            "center_lat=x&center_lng=1&disponibilidad=ocupado",
            vec![("center_lat", "invalid_number"), ("disponibilidad", "invalid_choice")],
        ),
    ];
    for (query, expected) in cases {
        let r = view(&app, query, &app.supervisor.token).await?;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        let expected: Vec<(String, String)> = expected
            .into_iter()
            .map(|(f, c)| (f.to_string(), c.to_string()))
            .collect();
        assert_eq!(invalid_fields(&r), expected, "{query}");
    }
    app.stop().await
}
