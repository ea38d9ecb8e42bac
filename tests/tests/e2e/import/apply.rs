//! A CSV and an NDJSON file of each kind, imported and applied.

use gad_e2e::gad_cli::GadCli;
use gad_e2e::spawn_app;

use super::{codigo_of, counts, dni, import, moments_ago, settled_import_jobs};

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct Unit {
    codigo_interno: String,
    email: String,
    rango: Option<String>,
    unidad: Option<String>,
    lat: Option<f64>,
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct Tarea {
    codigo: String,
    tipo: String,
    prioridad: i16,
    delegado: String,
    creador: String,
    descripcion: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_and_ndjson_files_of_each_kind_are_applied() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let cli = GadCli::new(&app.isolation).await?;
    let seeded = codigo_of(&app, app.efectivo.id).await?;
    let sup2_dni = dni(&app, "supervisor2@seed.invalid").await?;

    // Two new units (by email, by dni) and an existing one updated.
    let efectivos_csv = cli.file(
        "efectivos.csv",
        &format!(
            "codigo_interno,usuario_email,usuario_dni,rango,unidad,especialidad,lat,lng\n\
             imp-e1,Supervisor1@seed.invalid,,Cabo,Unidad 1,,-34.6,-58.38\n\
             IMP-E2,,{sup2_dni},Sargento,,,,\n\
             {seeded},efectivo1@seed.invalid,,Comisario,\"Comisaría 9, norte\",Motos,,\n"
        ),
    )?;
    let efectivos_ndjson = cli.file(
        "efectivos.ndjson",
        "{\"codigo_interno\":\"IMP-E3\",\"usuario_email\":\"supervisor3@seed.invalid\",\"unidad\":\"Unidad 3\"}\n",
    )?;
    let tareas_csv = cli.file(
        "tareas.csv",
        "codigo,titulo,tipo,inicio_programado,delegado_email,creador_email,prioridad,descripcion,fin_programado,ubicacion_lat,ubicacion_lon,ubicacion_descripcion\n\
         imp-t1,Ronda importada uno,patrullaje,2026-12-01T10:00:00-03:00,supervisor1@seed.invalid,admin1@seed.invalid,3,\"Con coma, y \"\"comillas\"\"\",2026-12-01T12:00:00-03:00,-34.6,-58.4,Plaza\n\
         IMP-T2,Ronda importada dos,vigilancia,2026-12-02T10:00:00Z,supervisor2@seed.invalid,,,,,,,\n",
    )?;
    let tareas_ndjson = cli.file(
        "tareas.jsonl",
        "{\"codigo\":\"IMP-T3\",\"titulo\":\"Ronda importada tres\",\"tipo\":\"entrenamiento\",\
          \"inicio_programado\":\"2026-12-03T10:00:00Z\",\"delegado_email\":\"supervisor1@seed.invalid\",\"prioridad\":5}\n",
    )?;
    let (older, newer) = (moments_ago(20), moments_ago(10));
    let locations_csv = cli.file(
        "locations.csv",
        &format!(
            "codigo_interno,lat,lng,accuracy_m,recorded_at\n\
             {seeded},-34.5,-58.5,7.5,{newer}\n\
             {seeded},-34.9,-58.9,,{older}\n"
        ),
    )?;
    let locations_ndjson = cli.file(
        "locations.ndjson",
        &format!("{{\"codigo_interno\":\"imp-e2\",\"lat\":-31.4,\"lng\":-64.2,\"recorded_at\":\"{newer}\"}}\n"),
    )?;

    // Units first: the locations name IMP-E2, which the efectivos file creates.
    let mut total = 0;
    for (kind, file, rows) in [
        ("efectivos", &efectivos_csv, 3),
        ("efectivos", &efectivos_ndjson, 1),
        ("tareas", &tareas_csv, 2),
        ("tareas", &tareas_ndjson, 1),
    ] {
        let summary = import(&cli, kind, file, &[]).await?;
        assert_eq!(counts(&summary), [rows, 0, 0, 0], "{}: {summary}", file.display());
        total += rows as usize;
    }
    let jobs = settled_import_jobs(&app, total).await?;
    assert!(jobs.iter().all(|j| j.status == "succeeded"), "{jobs:#?}");
    for file in [&locations_csv, &locations_ndjson] {
        import(&cli, "locations", file, &[]).await?;
    }
    let jobs = settled_import_jobs(&app, total + 3).await?;
    assert!(
        jobs.iter().all(|j| j.status == "succeeded" && j.attempts == 1),
        "{jobs:#?}"
    );

    let units: Vec<Unit> = sqlx::query_as(
        "SELECT e.codigo_interno, u.email, e.rango, e.unidad, ST_Y(e.ubicacion::geometry) AS lat
         FROM efectivos e JOIN usuarios u ON u.id = e.usuario_id
         WHERE e.codigo_interno IN ('IMP-E1', 'IMP-E2', 'IMP-E3', $1) ORDER BY e.codigo_interno",
    )
    .bind(&seeded)
    .fetch_all(&app.db)
    .await?;
    let unit = |codigo: &str, email: &str, rango: Option<&str>, unidad: Option<&str>, lat| Unit {
        codigo_interno: codigo.into(),
        email: email.into(),
        rango: rango.map(String::from),
        unidad: unidad.map(String::from),
        lat,
    };
    let mut expected = vec![
        unit(
            &seeded,
            "efectivo1@seed.invalid",
            Some("Comisario"),
            Some("Comisaría 9, norte"),
            Some(-34.5),
        ),
        unit(
            "IMP-E1",
            "supervisor1@seed.invalid",
            Some("Cabo"),
            Some("Unidad 1"),
            Some(-34.6),
        ),
        unit(
            "IMP-E2",
            "supervisor2@seed.invalid",
            Some("Sargento"),
            None,
            Some(-31.4),
        ),
        unit("IMP-E3", "supervisor3@seed.invalid", None, Some("Unidad 3"), None),
    ];
    expected.sort_by(|a, b| a.codigo_interno.cmp(&b.codigo_interno));
    assert_eq!(units, expected, "the older location of {seeded} was ignored");

    let tareas: Vec<Tarea> = sqlx::query_as(
        "SELECT t.codigo, t.tipo::text AS tipo, t.prioridad, d.email AS delegado, c.email AS creador, t.descripcion
         FROM tareas t JOIN usuarios d ON d.id = t.delegado_usuario_id JOIN usuarios c ON c.id = t.creado_por_usuario_id
         WHERE t.codigo LIKE 'IMP-T%' AND t.estado = 'programada' ORDER BY t.codigo",
    )
    .fetch_all(&app.db)
    .await?;
    let tarea = |codigo: &str, tipo: &str, prioridad, delegado: &str, creador: &str, descripcion: Option<&str>| Tarea {
        codigo: codigo.into(),
        tipo: tipo.into(),
        prioridad,
        delegado: format!("{delegado}@seed.invalid"),
        creador: format!("{creador}@seed.invalid"),
        descripcion: descripcion.map(String::from),
    };
    assert_eq!(
        tareas,
        [
            tarea(
                "IMP-T1",
                "patrullaje",
                3,
                "supervisor1",
                "admin1",
                Some("Con coma, y \"comillas\"")
            ),
            tarea("IMP-T2", "vigilancia", 2, "supervisor2", "supervisor2", None),
            tarea("IMP-T3", "entrenamiento", 5, "supervisor1", "supervisor1", None),
        ]
    );
    // Run as the system: the audit rows name no actor.
    let audited: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT action, actor_usuario_id FROM audit_log
         WHERE job_id IN (SELECT job_id FROM jobs WHERE kind LIKE 'import.%') ORDER BY action, resource_id",
    )
    .fetch_all(&app.db)
    .await?;
    let actions: Vec<&str> = audited.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "efectivo_created",
            "efectivo_created",
            "efectivo_created",
            "efectivo_updated",
            "task_created",
            "task_created",
            "task_created"
        ]
    );
    assert!(audited.iter().all(|(_, actor)| actor.is_none()), "{audited:?}");
    let historial: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM historial_estados h JOIN tareas t ON t.id = h.tarea_id
         WHERE t.codigo LIKE 'IMP-T%' AND h.estado_nuevo = 'programada' AND h.usuario_id IS NULL",
    )
    .fetch_one(&app.db)
    .await?;
    assert_eq!(historial, 3);
    app.stop().await
}
