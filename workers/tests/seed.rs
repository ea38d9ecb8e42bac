//! The seed generator against a real PostgreSQL/PostGIS: each test migrates a
//! fresh scratch database and drops it afterwards, also when an assertion fails.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use gad_workers::seed::{self, Profile, SeedError, SeedOptions};
// Test SQL is fixed text plus generated database names: nothing user-supplied.
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool};

/// Server administration URL; the tests create and drop databases through it.
fn admin_url() -> String {
    std::env::var("GAD_TEST_PG_ADMIN_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn db_url(name: &str) -> String {
    let admin = admin_url();
    match admin.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => format!("{admin}/{name}"),
    }
}

/// Runs `body` against a freshly migrated database, then drops it.
async fn with_scratch_db<F, Fut>(label: &str, body: F)
where
    F: FnOnce(PgPool) -> Fut,
    Fut: Future<Output = ()>,
{
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let name = format!("gad_seed_{label}_{}_{nanos}", std::process::id());
    let admin = PgPool::connect(&admin_url())
        .await
        .expect("connect to the admin database");
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&admin)
        .await
        .expect("create scratch database");

    let outcome = AssertUnwindSafe(async {
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect(&db_url(&name))
            .await
            .expect("connect to scratch");
        sqlx::migrate!("../migrations")
            .run(&pool)
            .await
            .expect("apply migrations");
        body(pool.clone()).await;
        pool.close().await;
    })
    .catch_unwind()
    .await;

    let _ = sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&admin)
    .await;
    admin.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.to_owned()))
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn text(pool: &PgPool, sql: &str) -> String {
    sqlx::query_scalar::<_, String>(AssertSqlSafe(sql.to_owned()))
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn distribution(pool: &PgPool, sql: &str) -> Vec<(String, i64)> {
    sqlx::query_as::<_, (String, i64)>(AssertSqlSafe(sql.to_owned()))
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn owned(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

/// Content fingerprints that ignore ids, uuids of re-created rows and times.
const FINGERPRINTS: [&str; 5] = [
    "SELECT md5(string_agg(concat_ws('|', codigo, estado, prioridad, tipo, titulo, ST_AsText(ubicacion)), ',' ORDER BY codigo)) FROM tareas WHERE origen = 'seed'",
    "SELECT md5(string_agg(concat_ws('|', codigo_interno, disponibilidad, rango, unidad, ST_AsText(ubicacion)), ',' ORDER BY codigo_interno)) FROM efectivos WHERE metadata @> '{\"seed\": true}'",
    "SELECT md5(string_agg(concat_ws('|', email, dni, nombre, apellido, nivel), ',' ORDER BY dni)) FROM usuarios WHERE extra_data @> '{\"seed\": true}'",
    "SELECT md5(string_agg(concat_ws('|', t.codigo, e.codigo_interno, a.respuesta), ',' ORDER BY t.codigo, e.codigo_interno)) FROM tarea_efectivos a JOIN tareas t ON t.id = a.tarea_id JOIN efectivos e ON e.id = a.efectivo_id WHERE t.origen = 'seed'",
    "SELECT md5(string_agg(concat_ws('|', t.codigo, h.estado_anterior, h.estado_nuevo, h.motivo), ',' ORDER BY t.codigo, h.created_at)) FROM historial_estados h JOIN tareas t ON t.id = h.tarea_id WHERE t.origen = 'seed'",
];

async fn fingerprints(pool: &PgPool) -> Vec<String> {
    let mut out = Vec::new();
    for sql in FINGERPRINTS {
        out.push(text(pool, sql).await);
    }
    out
}

async fn assert_dev_data_set(pool: &PgPool) {
    assert_eq!(
        scalar(
            pool,
            "SELECT count(*) FROM usuarios WHERE extra_data @> '{\"seed\": true}' AND deleted_at IS NULL"
        )
        .await,
        1_023
    );
    assert_eq!(
        distribution(
            pool,
            "SELECT nivel::text, count(*) FROM usuarios WHERE extra_data @> '{\"seed\": true}' GROUP BY 1 ORDER BY 1"
        )
        .await,
        owned(&[("1", 1_000), ("2", 20), ("3", 3)])
    );
    assert_eq!(
        scalar(
            pool,
            "SELECT count(*) FROM usuarios WHERE extra_data @> '{\"seed\": true}' AND NOT verificado"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            pool,
            "SELECT count(*) FROM efectivos WHERE metadata @> '{\"seed\": true}'"
        )
        .await,
        1_000
    );
    assert_eq!(
        scalar(
            pool,
            "SELECT count(*) FROM tareas WHERE origen = 'seed' AND extra_data @> '{\"seed\": true}'"
        )
        .await,
        1_000
    );

    assert_eq!(
        distribution(
            pool,
            "SELECT disponibilidad::text, count(*) FROM efectivos GROUP BY 1 ORDER BY 1"
        )
        .await,
        owned(&[
            ("disponible", 600),
            ("en_tarea", 250),
            ("fuera_servicio", 100),
            ("no_disponible", 50)
        ])
    );
    assert_eq!(
        distribution(pool, "SELECT estado::text, count(*) FROM tareas GROUP BY 1 ORDER BY 1").await,
        owned(&[
            ("cancelada", 50),
            ("en_curso", 200),
            ("finalizada", 300),
            ("pausada", 50),
            ("programada", 400)
        ])
    );
    assert_eq!(
        distribution(
            pool,
            "SELECT prioridad::text, count(*) FROM tareas GROUP BY 1 ORDER BY 1"
        )
        .await,
        owned(&[("1", 200), ("2", 350), ("3", 250), ("4", 120), ("5", 80)])
    );
    assert_eq!(
        scalar(pool, "SELECT count(*) FROM tareas WHERE tipo = 'emergencia'").await,
        0
    );
    assert_eq!(scalar(pool, "SELECT count(DISTINCT tipo) FROM tareas").await, 6);
    assert_eq!(
        scalar(pool, "SELECT count(*) FROM efectivos WHERE ubicacion IS NULL").await,
        20
    );
    assert_eq!(
        scalar(pool, "SELECT count(*) FROM tareas WHERE ubicacion IS NULL").await,
        100
    );
    assert_eq!(
        scalar(pool, "SELECT count(*) FROM (SELECT ubicacion::geometry g FROM efectivos UNION ALL SELECT ubicacion::geometry FROM tareas) p
                      WHERE g IS NOT NULL AND NOT (ST_Y(g) BETWEEN -34.705 AND -34.527 AND ST_X(g) BETWEEN -58.531 AND -58.335)").await,
        0,
        "positions outside the Buenos Aires box"
    );
    assert_eq!(
        scalar(pool, "SELECT count(*) FROM efectivos WHERE ubicacion IS NOT NULL
                      AND (ubicacion_actualizada_en IS NULL OR ubicacion_actualizada_en < now() - interval '31 minutes')").await,
        0
    );

    // Release rule, both directions.
    let held = "EXISTS (SELECT 1 FROM tarea_efectivos a JOIN tareas t ON t.id = a.tarea_id
                WHERE a.efectivo_id = e.id AND a.respuesta <> 'rechazada' AND t.estado IN ('en_curso', 'pausada'))";
    assert_eq!(
        scalar(
            pool,
            &format!("SELECT count(*) FROM efectivos e WHERE disponibilidad = 'en_tarea' AND NOT {held}")
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            pool,
            &format!("SELECT count(*) FROM efectivos e WHERE disponibilidad <> 'en_tarea' AND {held}")
        )
        .await,
        0
    );

    // Assignments: 1–3 per tarea; the delegado (nivel 1) owns one of them; a supervisor created it.
    assert_eq!(
        scalar(pool, "SELECT count(*) FROM tareas t WHERE (SELECT count(*) FROM tarea_efectivos a WHERE a.tarea_id = t.id) NOT BETWEEN 1 AND 3").await,
        0
    );
    assert_eq!(
        scalar(pool, "SELECT count(*) FROM tareas t WHERE NOT EXISTS (SELECT 1 FROM tarea_efectivos a JOIN efectivos e ON e.id = a.efectivo_id
                      WHERE a.tarea_id = t.id AND e.usuario_id = t.delegado_usuario_id)").await,
        0
    );
    assert_eq!(
        scalar(pool, "SELECT count(*) FROM tareas t JOIN usuarios d ON d.id = t.delegado_usuario_id JOIN usuarios c ON c.id = t.creado_por_usuario_id
                      WHERE d.nivel <> 1 OR c.nivel <> 2").await,
        0
    );

    // History: starts with the creation row, is a chain, and ends in the tarea's estado.
    assert_eq!(
        scalar(
            pool,
            "SELECT count(*) FROM (SELECT DISTINCT ON (tarea_id) tarea_id, estado_anterior, estado_nuevo, motivo
                      FROM historial_estados ORDER BY tarea_id, created_at, id) f
                      WHERE estado_anterior IS NOT NULL OR estado_nuevo <> 'programada' OR motivo <> 'creada'"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(pool, "SELECT count(*) FROM (SELECT estado_anterior, lag(estado_nuevo) OVER (PARTITION BY tarea_id ORDER BY created_at, id) prev
                      FROM historial_estados) h WHERE prev IS NOT NULL AND estado_anterior IS DISTINCT FROM prev").await,
        0
    );
    assert_eq!(
        scalar(pool, "SELECT count(*) FROM tareas t WHERE t.estado IS DISTINCT FROM
                      (SELECT h.estado_nuevo FROM historial_estados h WHERE h.tarea_id = t.id ORDER BY h.created_at DESC, h.id DESC LIMIT 1)").await,
        0
    );
    assert_eq!(
        scalar(
            pool,
            "SELECT count(*) FROM tareas WHERE estado IN ('en_curso', 'pausada') AND inicio_programado > now()"
        )
        .await,
        0
    );
    assert!(
        scalar(
            pool,
            "SELECT count(*) FROM tareas WHERE estado = 'finalizada' AND tiempo_pausado > interval '0'"
        )
        .await
            > 0
    );
    assert_eq!(
        scalar(
            pool,
            "SELECT count(*) FROM tareas WHERE estado = 'finalizada' AND duracion_real_horas IS NULL"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            pool,
            "SELECT count(*) FROM historial_estados h JOIN tareas t ON t.id = h.tarea_id
                      WHERE h.estado_nuevo = 'cancelada' AND length(coalesce(h.motivo, '')) < 3"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn dev_profile_is_exact_consistent_and_replaceable() {
    with_scratch_db("dev", |pool| async move {
        let opts = SeedOptions { profile: Profile::Dev, seed: 42, password: None };
        let report = seed::run(&pool, "development", opts).await.expect("first seed run");
        eprintln!("dev seed took {:.2?}", report.elapsed);
        let password = report.password.clone().expect("a generated password is reported");
        assert_eq!(password.len(), 16);
        assert_eq!((report.usuarios, report.efectivos, report.tareas), (1_023, 1_000, 1_000));
        assert_eq!(report.asignaciones as i64, scalar(&pool, "SELECT count(*) FROM tarea_efectivos").await);
        assert_eq!(report.historial as i64, scalar(&pool, "SELECT count(*) FROM historial_estados").await);
        assert_dev_data_set(&pool).await;

        for (email, nivel) in [("admin1@seed.invalid", 3i16), ("supervisor1@seed.invalid", 2), ("efectivo1@seed.invalid", 1)] {
            let (hash, got_nivel): (String, i16) =
                sqlx::query_as("SELECT hashed_password, nivel FROM usuarios WHERE lower(email) = $1 AND verificado AND deleted_at IS NULL")
                    .bind(email)
                    .fetch_one(&pool)
                    .await
                    .unwrap_or_else(|e| panic!("{email}: {e}"));
            assert_eq!(got_nivel, nivel, "{email}");
            assert!(gad_shared::password::verify(&password, &hash), "{email} logs in with the seeded password");
        }
        assert_eq!(scalar(&pool, "SELECT count(DISTINCT hashed_password) FROM usuarios").await, 1, "hashed once");

        // Rows that are not seed data, including one that pins a seed usuario
        // in the append-only audit log, as a login by admin1 would.
        sqlx::raw_sql(
            "INSERT INTO usuarios (dni, nombre, apellido, email, hashed_password, verificado)
                 VALUES ('12345678', 'Real', 'Person', 'real@example.org', 'x', true);
             INSERT INTO audit_log (actor_usuario_id, action, severity, resource_type, resource_id)
                 SELECT id, 'login', 'low', 'usuario', id::text FROM usuarios WHERE email = 'admin1@seed.invalid';",
        )
        .execute(&pool)
        .await
        .expect("insert non-seed rows");
        let before = fingerprints(&pool).await;
        let admin1_id = scalar(&pool, "SELECT id FROM usuarios WHERE email = 'admin1@seed.invalid'").await;

        let again = SeedOptions { profile: Profile::Dev, seed: 42, password: Some("otra-clave-segura".into()) };
        let report2 = seed::run(&pool, "development", again).await.expect("second seed run");
        assert!(report2.password.is_none(), "a supplied password is not echoed");
        assert_eq!(
            (report2.usuarios, report2.efectivos, report2.tareas, report2.asignaciones, report2.historial),
            (report.usuarios, report.efectivos, report.tareas, report.asignaciones, report.historial)
        );
        assert_dev_data_set(&pool).await;
        assert_eq!(fingerprints(&pool).await, before, "same arguments give the same content");
        assert_eq!(scalar(&pool, "SELECT id FROM usuarios WHERE email = 'admin1@seed.invalid'").await, admin1_id);
        assert_eq!(scalar(&pool, "SELECT count(*) FROM usuarios WHERE email = 'real@example.org' AND deleted_at IS NULL").await, 1);
        assert_eq!(scalar(&pool, "SELECT count(*) FROM audit_log").await, 1);
        let hash = text(&pool, "SELECT hashed_password FROM usuarios WHERE email = 'efectivo1@seed.invalid'").await;
        assert!(gad_shared::password::verify("otra-clave-segura", &hash));

        // A different seed gives different data.
        let other = SeedOptions { profile: Profile::Dev, seed: 7, password: Some("otra-clave-segura".into()) };
        seed::run(&pool, "development", other).await.expect("third seed run");
        assert_dev_data_set(&pool).await;
        assert_ne!(fingerprints(&pool).await[0], before[0]);
    })
    .await;
}

#[tokio::test]
async fn refuses_production() {
    let pool = PgPool::connect_lazy(&admin_url()).expect("lazy pool");
    let result = seed::run(&pool, "production", SeedOptions::default()).await;
    assert!(matches!(result, Err(SeedError::Production)), "{result:?}");
}

/// `cargo test -p gad-workers --release --test seed -- --ignored --nocapture`
#[tokio::test]
#[ignore = "slow: seeds the 100k bench profile"]
async fn bench_profile_timing() {
    with_scratch_db("bench", |pool| async move {
        let opts = SeedOptions {
            profile: Profile::Bench,
            seed: 42,
            password: Some("bench-password".into()),
        };
        let first = seed::run(&pool, "development", opts.clone()).await.expect("bench seed");
        eprintln!("bench seed (empty database): {:.2?} {first:?}", first.elapsed);
        assert_eq!(
            (first.usuarios, first.efectivos, first.tareas),
            (100_505, 100_000, 100_000)
        );
        let second = seed::run(&pool, "development", opts).await.expect("bench re-seed");
        eprintln!("bench re-seed (replacing): {:.2?}", second.elapsed);
        assert_eq!(
            distribution(
                &pool,
                "SELECT disponibilidad::text, count(*) FROM efectivos GROUP BY 1 ORDER BY 1"
            )
            .await,
            owned(&[
                ("disponible", 60_000),
                ("en_tarea", 25_000),
                ("fuera_servicio", 10_000),
                ("no_disponible", 5_000)
            ])
        );
        // Timings are printed, not asserted: on a shared machine they depend on load.

        // Switching back to dev retires the surplus seed rows.
        let dev = SeedOptions {
            profile: Profile::Dev,
            seed: 42,
            password: Some("bench-password".into()),
        };
        let third = seed::run(&pool, "development", dev).await.expect("dev after bench");
        eprintln!("dev after bench: {:.2?}", third.elapsed);
        assert_dev_data_set(&pool).await;
        assert_eq!(scalar(&pool, "SELECT count(*) FROM usuarios").await, 1_023);
    })
    .await;
}
