//! Re-running an import publishes nothing new: every row is a duplicate
//! (JetStream's duplicate window, by the UUIDv5 job id) and nothing changes in
//! PostgreSQL. A run that crashed after publishing rows its checkpoint does not
//! count yet publishes them again as duplicates, and a finished checkpoint
//! skips the whole file.

use gad_e2e::gad_cli::GadCli;
use gad_e2e::{TestApp, spawn_app};

use super::{counts, import, import_lane_idle, settled_import_jobs};

/// What an import may have changed: tareas, efectivos, audit rows, jobs rows.
async fn snapshot(app: &TestApp) -> anyhow::Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT format('%s|%s|%s|%s', t.codigo, t.updated_at, t.titulo, t.prioridad) FROM tareas t WHERE t.codigo LIKE 'IMP-%'
         UNION ALL SELECT format('%s|%s|%s', e.codigo_interno, e.updated_at, e.rango) FROM efectivos e WHERE e.codigo_interno LIKE 'IMP-%'
         UNION ALL SELECT format('audit|%s', count(*)) FROM audit_log
         UNION ALL SELECT format('%s|%s|%s|%s', j.job_id, j.status, j.attempts, j.finished_at) FROM jobs j
         ORDER BY 1",
    )
    .fetch_all(&app.db)
    .await?)
}

async fn last_sequence(app: &TestApp) -> anyhow::Result<u64> {
    let mut stream = app.js.get_stream(app.topology.jobs_stream()).await?;
    Ok(stream.info().await?.state.last_sequence)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_publishes_only_duplicates_and_changes_nothing() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let cli = GadCli::new(&app.isolation).await?;
    let mut csv = String::from("codigo,titulo,tipo,inicio_programado,delegado_email\n");
    for n in 1..=5 {
        csv.push_str(&format!(
            "IMP-{n},Ronda repetida {n},patrullaje,2026-12-0{n}T10:00:00Z,supervisor1@seed.invalid\n"
        ));
    }
    let tareas = cli.file("tareas.csv", &csv)?;
    let units = cli.file(
        "efectivos.csv",
        "codigo_interno,usuario_email,rango\nIMP-U1,supervisor4@seed.invalid,Cabo\n",
    )?;
    let checkpoint = cli.dir().join("tareas.checkpoint");
    let cp = checkpoint.to_string_lossy().into_owned();

    let first = import(&cli, "tareas", &tareas, &["--checkpoint", &cp]).await?;
    assert_eq!(counts(&first), [5, 0, 0, 0], "{first}");
    assert_eq!(counts(&import(&cli, "efectivos", &units, &[]).await?), [1, 0, 0, 0]);
    settled_import_jobs(&app, 6).await?;
    import_lane_idle(&app).await?;
    let before = snapshot(&app).await?;
    let sequence = last_sequence(&app).await?;

    // Again, without the checkpoint: every row is read and is a duplicate.
    let again = import(&cli, "tareas", &tareas, &[]).await?;
    assert_eq!(counts(&again), [0, 5, 0, 0], "{again}");
    assert_eq!(counts(&import(&cli, "efectivos", &units, &[]).await?), [0, 1, 0, 0]);

    // A crash after publishing lines 3-6 but before checkpointing them.
    let mut saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&checkpoint)?)?;
    assert_eq!(
        (saved["line"].as_u64(), saved["complete"].as_bool()),
        (Some(6), Some(true))
    );
    saved["line"] = 2.into();
    saved["complete"] = false.into();
    std::fs::write(&checkpoint, saved.to_string())?;
    let resumed = import(&cli, "tareas", &tareas, &["--checkpoint", &cp]).await?;
    assert_eq!(counts(&resumed), [0, 4, 0, 1], "{resumed}");

    // The finished checkpoint skips the whole file.
    let done = import(&cli, "tareas", &tareas, &["--checkpoint", &cp]).await?;
    assert_eq!(counts(&done), [0, 0, 0, 5], "{done}");

    assert_eq!(last_sequence(&app).await?, sequence, "JetStream stored nothing new");
    import_lane_idle(&app).await?;
    assert_eq!(snapshot(&app).await?, before, "nothing changed in PostgreSQL");
    app.stop().await
}
