//! A job delivered again after its `jobs` row is terminal (past JetStream's
//! duplicate window, or redelivered after a lost acknowledgement) is
//! acknowledged without running: an import never applies a row twice, even
//! when what it wrote was changed since.

use async_nats::HeaderMap;
use gad_e2e::gad_cli::GadCli;
use gad_e2e::spawn_app;
use gad_shared::envelope::{self, CONTENT_TYPE_MSGPACK, ENVELOPE_VERSION, JobEnvelope, headers};
use gad_shared::job::kind_spec;

use super::{JobRow, codigo_of, counts, import, import_lane_idle, moments_ago, settled_import_jobs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_job_delivered_after_its_row_is_terminal_is_not_applied_again() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let cli = GadCli::new(&app.isolation).await?;
    let unit = codigo_of(&app, app.efectivo.id).await?;
    let files = [
        (
            "efectivos",
            cli.file("e.csv", "codigo_interno,usuario_email,rango\nIMP-D1,supervisor5@seed.invalid,Cabo\n")?,
        ),
        (
            "tareas",
            cli.file(
                "t.csv",
                "codigo,titulo,tipo,inicio_programado,delegado_email\nIMP-D2,Ronda de prueba,patrullaje,2026-12-01T10:00:00Z,supervisor5@seed.invalid\n",
            )?,
        ),
        (
            "locations",
            cli.file(
                "l.csv",
                &format!("codigo_interno,lat,lng,recorded_at\n{unit},-34.3,-58.3,{}\n", moments_ago(30)),
            )?,
        ),
    ];
    for (kind, file) in &files {
        assert_eq!(counts(&import(&cli, kind, file, &[]).await?), [1, 0, 0, 0]);
    }
    // Idle first: a job's row turns terminal inside its handler's
    // transaction, and the worker writes it once more (finished_at) before
    // the acknowledgement.
    import_lane_idle(&app).await?;
    let done = settled_import_jobs(&app, 3).await?;
    assert!(done.iter().all(|j| j.status == "succeeded"), "{done:#?}");

    // Changed since by someone else: a second run of the jobs would undo it.
    sqlx::query("UPDATE efectivos SET rango = 'Cambiado' WHERE codigo_interno = 'IMP-D1'")
        .execute(&app.db)
        .await?;
    sqlx::query("UPDATE tareas SET titulo = 'Titulo cambiado' WHERE codigo = 'IMP-D2'")
        .execute(&app.db)
        .await?;
    sqlx::query(
        "UPDATE efectivos SET ubicacion = ST_SetSRID(ST_MakePoint(-58.9, -34.9), 4326)::geography,
                ubicacion_actualizada_en = now() - interval '1 hour' WHERE codigo_interno = $1",
    )
    .bind(&unit)
    .execute(&app.db)
    .await?;

    // The same jobs again, under new message ids so JetStream stores them.
    let stream = app.js.get_stream(app.topology.jobs_stream()).await?;
    let delivered_before = stream.consumer_info("import").await?.delivered.stream_sequence;
    for job in &done {
        let row: (serde_json::Value, chrono::DateTime<chrono::Utc>) =
            sqlx::query_as("SELECT payload_summary, created_at FROM jobs WHERE job_id = $1")
                .bind(job.job_id)
                .fetch_one(&app.db)
                .await?;
        let env = JobEnvelope {
            v: ENVELOPE_VERSION,
            job_id: job.job_id,
            kind: job.kind.clone(),
            submitted_by: None,
            submitted_at: row.1,
            request_id: None,
            client: None,
            payload: row.0,
        };
        let spec = kind_spec(&job.kind).ok_or_else(|| anyhow::anyhow!("unknown kind {}", job.kind))?;
        let mut h = HeaderMap::new();
        h.insert(headers::CONTENT_TYPE, CONTENT_TYPE_MSGPACK);
        h.insert(headers::MSG_ID, format!("{}:again", job.job_id).as_str());
        let ack = app
            .js
            .publish_with_headers(app.topology.job_subject(spec), h, envelope::encode(&env)?)
            .await?
            .await?;
        assert!(!ack.duplicate);
    }
    import_lane_idle(&app).await?;
    let delivered = stream.consumer_info("import").await?.delivered.stream_sequence;
    assert_eq!(delivered, delivered_before + 3, "the workers took all three");

    let after: Vec<JobRow> = settled_import_jobs(&app, 3).await?;
    assert_eq!(after, done, "the jobs rows are as they were: not run again");
    let rango: Option<String> = sqlx::query_scalar("SELECT rango FROM efectivos WHERE codigo_interno = 'IMP-D1'")
        .fetch_one(&app.db)
        .await?;
    assert_eq!(rango.as_deref(), Some("Cambiado"));
    let titulo: String = sqlx::query_scalar("SELECT titulo FROM tareas WHERE codigo = 'IMP-D2'")
        .fetch_one(&app.db)
        .await?;
    assert_eq!(titulo, "Titulo cambiado");
    let lat: Option<f64> =
        sqlx::query_scalar("SELECT ST_Y(ubicacion::geometry) FROM efectivos WHERE codigo_interno = $1")
            .bind(&unit)
            .fetch_one(&app.db)
            .await?;
    assert_eq!(lat, Some(-34.9), "the location job did not run again");
    app.stop().await
}
