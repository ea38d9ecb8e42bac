//! An import stopped by SIGINT saves its checkpoint and exits 130; the re-run
//! skips what the checkpoint covers, publishes the rest, and in the end every
//! row was applied exactly once.

use std::time::Duration;

use gad_e2e::gad_cli::GadCli;
use gad_e2e::spawn_app;
use tokio::process::Command;

use super::{RUN_WITHIN, counts, import, settled_import_jobs};

const ROWS: u64 = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_import_resumes_and_applies_every_row_exactly_once() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let cli = GadCli::new(&app.isolation).await?;
    let mut csv = String::from("codigo,titulo,tipo,inicio_programado,delegado_email\n");
    for n in 1..=ROWS {
        csv.push_str(&format!(
            "IMP-R{n:05},Tarea reanudada {n},administrativa,2026-12-01T10:00:00Z,supervisor2@seed.invalid\n"
        ));
    }
    let file = cli.file("tareas.csv", &csv)?;
    let checkpoint = cli.dir().join("cp.json");
    let cp = checkpoint.to_string_lossy().into_owned();
    let path = file.to_string_lossy().into_owned();
    // One row in flight at a time, checkpointed every 5 rows: slow enough to stop mid-way.
    let args = [
        "import",
        "--kind",
        "tareas",
        &path,
        "--summary-json",
        "--checkpoint",
        &cp,
        "--in-flight",
        "1",
        "--checkpoint-every",
        "5",
    ];
    let child = cli.spawn(&args)?;
    let pid = child.id().ok_or_else(|| anyhow::anyhow!("gad exited at once"))?;
    let deadline = tokio::time::Instant::now() + RUN_WITHIN;
    loop {
        let line = std::fs::read_to_string(&checkpoint)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["line"].as_u64());
        if line.is_some_and(|l| l >= 50) {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no checkpoint past line 50");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let kill = Command::new("kill").arg("-INT").arg(pid.to_string()).status().await?;
    anyhow::ensure!(kill.success(), "kill -INT {pid}");
    let first = GadCli::finish(child, RUN_WITHIN).await?;
    assert_eq!(first.status.code(), Some(130), "{first:?}");
    let first = first.summary()?;
    assert_eq!(first["interrupted"], true, "{first}");
    let stopped_at = first["checkpoint_line"].as_u64().unwrap_or(0);
    assert!((50..=ROWS).contains(&stopped_at), "{first}");
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&checkpoint)?)?;
    assert_eq!(
        saved["line"].as_u64(),
        Some(stopped_at),
        "the final checkpoint is the summary's"
    );
    assert_eq!(saved["complete"], false);

    let second = import(&cli, "tareas", &file, &["--checkpoint", &cp]).await?;
    let [published, duplicates, rejected, skipped] = counts(&second);
    assert_eq!(skipped, stopped_at - 1, "rows on lines 2..={stopped_at}: {second}");
    assert_eq!((rejected, published + duplicates), (0, ROWS - skipped), "{second}");
    let published_first = first["published"].as_u64().unwrap_or(0);
    assert_eq!(
        published_first + published,
        ROWS,
        "each row published once: {first} {second}"
    );

    let jobs = settled_import_jobs(&app, ROWS as usize).await?;
    assert_eq!(jobs.len() as u64, ROWS);
    assert!(
        jobs.iter().all(|j| j.status == "succeeded" && j.attempts == 1),
        "every job ran once"
    );
    let (tareas, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT creado_por_job_id) FROM tareas WHERE codigo LIKE 'IMP-R%'")
            .fetch_one(&app.db)
            .await?;
    assert_eq!((tareas, distinct), (ROWS as i64, ROWS as i64));
    app.stop().await
}
