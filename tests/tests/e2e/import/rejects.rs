//! Bad rows never stop an import: they are listed in the rejects file with
//! their line and every reason, and the good rows around them are applied.
//! Input that cannot be read as the kind's file stops it with a clear error.

use gad_e2e::gad_cli::GadCli;
use gad_e2e::spawn_app;
use serde_json::Value;

use super::{RUN_WITHIN, codigo_of, counts, import, moments_ago, run_import, settled_import_jobs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_are_listed_with_their_lines_and_reasons_and_the_good_ones_applied() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let cli = GadCli::new(&app.isolation).await?;
    let unit = codigo_of(&app, app.efectivo.id).await?;
    let at = moments_ago(5);
    let file = cli.file(
        "positions.csv",
        &format!(
            "codigo_interno,lat,lng,accuracy_m,recorded_at\n\
             {unit},-34.1,-58.1,,{at}\n\
             {unit},95,-58.1,-3,{at}\n\
             x,-34.1,-58.1,,2026-01-01T00:00:00\n\
             {unit},-34.1\n\
             {unit},abc,-58.1,,{at}\n\
             NADIE-99,-34.2,-58.2,,{at}\n"
        ),
    )?;
    let rejects = cli.dir().join("bad.ndjson");
    let rejects_arg = rejects.to_string_lossy().into_owned();
    let summary = import(&cli, "locations", &file, &["--rejects", &rejects_arg]).await?;
    assert_eq!(counts(&summary), [2, 0, 4, 0], "{summary}");

    let listed: Vec<Value> = std::fs::read_to_string(&rejects)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let reasons = |r: &Value| -> Vec<(String, String)> {
        r["reasons"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| {
                        (
                            x["field"].as_str().unwrap_or("").into(),
                            x["code"].as_str().unwrap_or("").into(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let got: Vec<(u64, Vec<(String, String)>)> = listed
        .iter()
        .map(|r| (r["line"].as_u64().unwrap_or(0), reasons(r)))
        .collect();
    let pairs = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(f, c)| (f.to_string(), c.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        got,
        [
            (3, pairs(&[("lat", "out_of_range"), ("accuracy_m", "out_of_range")])),
            (
                4,
                pairs(&[("codigo_interno", "invalid_format"), ("recorded_at", "naive_timestamp")])
            ),
            (5, pairs(&[("row", "column_count")])),
            (6, pairs(&[("lat", "invalid_number")])),
        ]
    );
    assert_eq!(listed[3]["raw"], format!("{unit},abc,-58.1,,{at}"));
    assert!(
        listed
            .iter()
            .all(|r| r["reasons"][0]["message"].as_str().is_some_and(|m| !m.is_empty()))
    );

    // The good row is applied; a unit nobody has fails in the worker, naming the field.
    let jobs = settled_import_jobs(&app, 2).await?;
    let statuses: Vec<&str> = jobs.iter().map(|j| j.status.as_str()).collect();
    assert!(
        statuses.contains(&"succeeded") && statuses.contains(&"failed"),
        "{jobs:#?}"
    );
    let failed = jobs.iter().find(|j| j.status == "failed").and_then(|j| j.error.clone());
    let failed = failed.unwrap_or_default();
    assert_eq!(failed["http_status"], 422, "{failed}");
    assert_eq!(failed["details"]["fields"][0]["field"], "codigo_interno", "{failed}");
    assert_eq!(failed["details"]["fields"][0]["code"], "not_found", "{failed}");
    let lat: Option<f64> =
        sqlx::query_scalar("SELECT ST_Y(ubicacion::geometry) FROM efectivos WHERE codigo_interno = $1")
            .bind(&unit)
            .fetch_one(&app.db)
            .await?;
    assert_eq!(lat, Some(-34.1));
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_efectivo_of_an_unknown_usuario_fails_naming_the_field() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let cli = GadCli::new(&app.isolation).await?;
    let file = cli.file(
        "units.ndjson",
        "{\"codigo_interno\":\"IMP-X1\",\"usuario_email\":\"nadie@seed.invalid\"}\n\
         {\"codigo_interno\":\"IMP-X2\",\"usuario_dni\":\"00000-0\"}\n",
    )?;
    let summary = import(&cli, "efectivos", &file, &[]).await?;
    assert_eq!(counts(&summary), [2, 0, 0, 0], "{summary}");
    let jobs = settled_import_jobs(&app, 2).await?;
    let mut named: Vec<String> = jobs
        .iter()
        .filter(|j| j.status == "failed")
        .filter_map(|j| {
            j.error.as_ref()?["details"]["fields"][0]["field"]
                .as_str()
                .map(String::from)
        })
        .collect();
    named.sort();
    assert_eq!(named, ["usuario_dni", "usuario_email"], "{jobs:#?}");
    let units: i64 = sqlx::query_scalar("SELECT count(*) FROM efectivos WHERE codigo_interno LIKE 'IMP-X%'")
        .fetch_one(&app.db)
        .await?;
    assert_eq!(units, 0);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_that_is_not_the_kinds_file_stops_with_a_clear_error() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let cli = GadCli::new(&app.isolation).await?;
    let missing = cli.dir().join("absent.csv");
    let header = cli.file("tareas.csv", "codigo,titulo,color\nT-1,Ronda larga,rojo\n")?;
    let no_extension = cli.file("tareas.txt", "{}\n")?;
    for (file, kind, says) in [
        (&missing, "tareas", "absent.csv"),
        (&header, "tareas", "bad CSV header: unknown column \"color\""),
        (&no_extension, "tareas", "give --format csv or --format ndjson"),
    ] {
        let out = run_import(&cli, kind, file, &[]).await?;
        assert!(!out.status.success(), "{out:?}");
        assert!(out.stderr.contains(says), "stderr should say {says:?}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    let out = cli.run(&["import", "--kind", "unidades", "x.csv"], RUN_WITHIN).await?;
    assert_eq!(out.status.code(), Some(2), "clap refuses an unknown kind: {out:?}");
    assert_eq!(app.jobs_stream_messages().await?, Some(0), "nothing was published");
    app.stop().await
}
