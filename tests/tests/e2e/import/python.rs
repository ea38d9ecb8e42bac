//! The wire format is a public interface: `tests/python/publish_jobs.py`,
//! written from the README's "Wire format" section alone with the Python
//! `nats-py` client (installed by `deploy/services.sh up` into `.local/venv`),
//! publishes import jobs as JSON, and the workers apply them.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use gad_e2e::services::workspace_root;
use gad_e2e::spawn_app;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use uuid::Uuid;

use super::{codigo_of, moments_ago, settled_import_jobs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_published_from_python_by_the_readme_are_applied() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let root = workspace_root();
    let python = root.join(".local/venv/bin/python");
    let script = root.join("tests/python/publish_jobs.py");
    let probe = Command::new(&python).args(["-c", "import nats"]).status().await;
    anyhow::ensure!(
        probe.is_ok_and(|s| s.success()),
        "{} cannot import nats-py: run `deploy/services.sh up`",
        python.display()
    );
    let unit = codigo_of(&app, app.efectivo.id).await?;
    let jobs = [
        json!({"kind": "import.efectivos", "payload": {"codigo_interno": "PY-1", "usuario_email": "supervisor6@seed.invalid", "rango": "Cabo"}}),
        json!({"kind": "import.tareas", "payload": {"codigo": "PY-T1", "titulo": "Ronda desde Python", "tipo": "patrullaje",
               "inicio_programado": "2026-12-01T10:00:00Z", "delegado_email": "supervisor6@seed.invalid"}}),
        json!({"kind": "import.locations", "payload": {"codigo_interno": unit, "lat": -34.25, "lng": -58.25, "recorded_at": moments_ago(5)}}),
    ];
    let input: String = jobs.iter().map(|j| format!("{j}\n")).collect();

    let mut child = Command::new(&python)
        .arg(&script)
        .args([
            "--url",
            &app.isolation.nats.url,
            "--subject-prefix",
            &app.isolation.nats.subject_prefix,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the Python publisher")?;
    let mut stdin = child.stdin.take().context("stdin")?;
    stdin.write_all(input.as_bytes()).await?;
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await??;
    anyhow::ensure!(
        out.status.success(),
        "publish_jobs.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let acks: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(acks.len(), 3, "{acks:?}");
    assert!(
        acks.iter()
            .all(|a| a["duplicate"] == false && a["seq"].as_u64() > Some(0))
    );
    let mut ids: Vec<Uuid> = acks.iter().filter_map(|a| a["job_id"].as_str()?.parse().ok()).collect();
    ids.sort();

    let settled = settled_import_jobs(&app, 3).await?;
    let got: Vec<(Uuid, &str)> = settled.iter().map(|j| (j.job_id, j.status.as_str())).collect();
    assert_eq!(
        got,
        ids.iter().map(|id| (*id, "succeeded")).collect::<Vec<_>>(),
        "{settled:#?}"
    );
    let (rango, lat): (Option<String>, Option<f64>) = sqlx::query_as(
        "SELECT (SELECT rango FROM efectivos WHERE codigo_interno = 'PY-1'),
                (SELECT ST_Y(ubicacion::geometry) FROM efectivos WHERE codigo_interno = $1)",
    )
    .bind(&unit)
    .fetch_one(&app.db)
    .await?;
    assert_eq!((rango.as_deref(), lat), (Some("Cabo"), Some(-34.25)));
    let tarea: i64 = sqlx::query_scalar("SELECT count(*) FROM tareas WHERE codigo = 'PY-T1'")
        .fetch_one(&app.db)
        .await?;
    assert_eq!(tarea, 1);
    app.stop().await
}
