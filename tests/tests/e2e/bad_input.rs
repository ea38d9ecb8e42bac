//! Requests refused before anything is queued: invalid parameters, unknown
//! jobs, missing or insufficient credentials.

use gad_e2e::{TestApp, spawn_app};
use reqwest::StatusCode;

use crate::error_shape::assert_error;

const NEAREST: &str = "/api/v1/geo/nearest";

/// The fields a 422 lists, in order.
fn invalid_fields(r: &gad_e2e::ApiResponse) -> Vec<String> {
    r.body["details"]["fields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .map(|f| f["field"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn assert_nothing_queued(app: &TestApp) -> anyhow::Result<()> {
    assert_eq!(
        app.jobs_stream_messages().await?,
        Some(0),
        "a job reached the jobs stream"
    );
    assert_eq!(app.job_status_keys().await?, Some(0), "a job status was recorded");
    assert_eq!(app.jobs_rows().await?, 0, "a jobs row was written");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_invalid_parameter_is_a_422_naming_it() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let cases = [
        ("lat=95&lng=-58.4", "lat", "out_of_range"),
        ("lat=-34.6&lng=-181", "lng", "out_of_range"),
        ("lat=-34.6&lng=-58.4&k=0", "k", "out_of_range"),
        ("lat=-34.6&lng=-58.4&k=51", "k", "out_of_range"),
        ("lat=-34.6&lng=-58.4&radius_m=50", "radius_m", "out_of_range"),
        ("lng=-58.4", "lat", "required"),
        ("lat=-34.6", "lng", "required"),
        ("lat=south&lng=-58.4", "lat", "invalid_number"),
        ("lat=-34.6&lng=-58.4&k=five", "k", "invalid_integer"),
        ("lat=NaN&lng=-58.4", "lat", "invalid_number"),
    ];
    for (query, field, code) in cases {
        let r = app
            .get_with(
                &format!("{NEAREST}?{query}"),
                Some(&app.supervisor.token),
                &[("Prefer", "wait=5")],
            )
            .await?;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        let fields = r.body["details"]["fields"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            fields.len(),
            1,
            "{query}: expected exactly one invalid field: {}",
            r.text
        );
        assert_eq!(fields[0]["field"], field, "{query}: {}", r.text);
        assert_eq!(fields[0]["code"], code, "{query}: {}", r.text);
        assert!(
            fields[0]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{query}: {}",
            r.text
        );
        assert!(r.header("x-job-id").is_none(), "{query}: a refused request has no job");
    }
    assert_nothing_queued(&app).await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_invalid_field_is_listed_at_once() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let r = app
        .get(
            &format!("{NEAREST}?lat=95&lng=-181&k=0&radius_m=50"),
            Some(&app.supervisor.token),
        )
        .await?;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let mut fields = invalid_fields(&r);
    fields.sort();
    assert_eq!(fields, ["k", "lat", "lng", "radius_m"], "{}", r.text);

    let r = app
        .get(&format!("{NEAREST}?k=abc"), Some(&app.supervisor.token))
        .await?;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let mut fields = invalid_fields(&r);
    fields.sort();
    assert_eq!(fields, ["k", "lat", "lng"], "{}", r.text);

    // A request id sent by the client is the one the error reports.
    let r = app
        .get_with(
            &format!("{NEAREST}?lat=95&lng=0"),
            Some(&app.supervisor.token),
            &[("X-Request-Id", "e2e-req-42")],
        )
        .await?;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.body["request_id"], "e2e-req-42");

    assert_nothing_queued(&app).await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_or_malformed_job_ids_are_not_found() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let unknown = uuid::Uuid::now_v7();
    let r = app
        .get(&format!("/api/v1/jobs/{unknown}"), Some(&app.supervisor.token))
        .await?;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let r = app
        .get("/api/v1/jobs/not-a-job-id", Some(&app.supervisor.token))
        .await?;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_checked_before_anything_is_queued() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let query = format!("{NEAREST}?lat=-34.6&lng=-58.4&k=3");

    let r = app.get(&query, None).await?;
    assert_error(&r, StatusCode::UNAUTHORIZED, "not_authenticated");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));

    let r = app.get(&query, Some("not.a.token")).await?;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_token");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));

    // Well-formed, but signed with another test's secret.
    let foreign = gad_shared::settings::AuthSettings {
        jwt_secret: "x".repeat(48),
        ..app.isolation.auth.clone()
    };
    let (token, _) = gad_shared::auth::TokenIssuer::new(&foreign).issue(app.supervisor.id, 2)?;
    let r = app.get(&query, Some(&token)).await?;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_token");

    assert_eq!(app.efectivo.nivel, 1);
    let r = app.get(&query, Some(&app.efectivo.token)).await?;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");

    assert_nothing_queued(&app).await?;
    app.stop().await
}
