//! `gad import` with the jobs on RabbitMQ: the rows are published to the
//! lanes' queues with confirms and applied. RabbitMQ keeps no duplicate
//! window, so a re-run publishes every row again; the workers find each job
//! already finished and change nothing.

use gad_e2e::gad_cli::GadCli;
use gad_e2e::spawn_app_on;
use std::time::Duration;

use gad_shared::queue::Backend;
use gad_shared::queue::rabbit::{RabbitLink, RabbitNames};

use super::{counts, import, settled_import_jobs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_rabbitmq_an_import_is_applied_once_even_when_run_again() -> anyhow::Result<()> {
    let app = spawn_app_on(Backend::Rabbitmq).await?;
    let cli = GadCli::new(&app.isolation).await?;
    let mut csv = String::from("codigo,titulo,tipo,inicio_programado,delegado_email\n");
    for n in 1..=4 {
        csv.push_str(&format!(
            "IMPR-{n},Ronda por RabbitMQ {n},patrullaje,2026-12-0{n}T10:00:00Z,supervisor1@seed.invalid\n"
        ));
    }
    let tareas = cli.file("tareas.csv", &csv)?;
    let first = import(&cli, "tareas", &tareas, &[]).await?;
    assert_eq!(counts(&first), [4, 0, 0, 0], "{first}");
    let settled = settled_import_jobs(&app, 4).await?;
    assert!(settled.iter().all(|j| j.status == "succeeded"), "{settled:?}");
    let rows = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT format('%s|%s', codigo, updated_at) FROM tareas WHERE codigo LIKE 'IMPR-%' ORDER BY 1",
        )
        .fetch_all(&app.db)
        .await
    };
    let before = rows().await?;
    assert_eq!(before.len(), 4);

    let again = import(&cli, "tareas", &tareas, &[]).await?;
    assert_eq!(counts(&again), [4, 0, 0, 0], "published again: {again}");
    // The copies are consumed and skipped: the rows stay as they were.
    let link = RabbitLink::lazy(
        &app.isolation.queue.rabbitmq,
        RabbitNames::new(&app.isolation.nats),
        "gad-e2e import check",
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while link.depths().await?.iter().any(|(_, ready)| *ready > 0) {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "copies never consumed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Taken is not yet settled: a moment for the last ones.
    tokio::time::sleep(Duration::from_millis(500)).await;
    link.close().await;
    let after_jobs = settled_import_jobs(&app, 4).await?;
    assert_eq!(after_jobs, settled, "no job ran again");
    assert_eq!(rows().await?, before, "nothing changed in PostgreSQL");
    app.stop().await
}
