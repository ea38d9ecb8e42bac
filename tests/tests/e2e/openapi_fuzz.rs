//! The served OpenAPI document against the running system: schemathesis
//! (installed into `.local/venv` by `deploy/services.sh up`) fuzzes every
//! documented operation with a valid nivel 3 token; no answer may be a 5xx,
//! and every answer must match the documented schema. Also: `/docs` serves
//! Swagger UI, and every documented operation reaches a handler.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use gad_e2e::spawn_app;
use reqwest::StatusCode;
use serde_json::Value;

/// Whole-run bound: the fuzzer is stopped, and the test fails, past this.
const RUN_LIMIT: Duration = Duration::from_secs(170);

fn schemathesis() -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os("GAD_SCHEMATHESIS") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.local/venv/bin/schemathesis"),
    };
    if !path.is_file() {
        bail!(
            "schemathesis not found at {}: run ./deploy/services.sh up, which installs it into .local/venv \
             (or point GAD_SCHEMATHESIS at one)",
            path.display()
        );
    }
    Ok(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_undocumented_answer() -> anyhow::Result<()> {
    let bin = schemathesis()?;
    let app = spawn_app().await?;
    let schema_url = format!("{}/api/v1/openapi.json", app.http);
    let reports = tempdir()?;
    let mut command = tokio::process::Command::new(&bin);
    command
        .args(["run", &schema_url])
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", "6", "--seed", "20260601", "--workers", "2"])
        .args(["--request-timeout", "40", "--suppress-health-check", "all"])
        .args(["--report-dir", &reports.display().to_string()])
        // Logging out, or deleting the caller's own usuario, revokes the one
        // token every request carries: the rest of the run would be 401s.
        .args(["--exclude-operation-id", "post_api_v1_auth_logout"])
        .args(["--exclude-operation-id", "delete_api_v1_users_id"])
        .args(["--exclude-operation-id", "delete_api_v1_usuarios_id"])
        .args(["-H", &format!("Authorization: Bearer {}", app.admin.token)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own cache directory lands in the working directory, not in the checkout.
        .current_dir(&reports)
        .kill_on_drop(true);
    let run = command.spawn().with_context(|| format!("starting {}", bin.display()))?;
    let output = tokio::time::timeout(RUN_LIMIT, run.wait_with_output())
        .await
        .with_context(|| format!("schemathesis ran longer than {RUN_LIMIT:?}"))??;
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = std::fs::remove_dir_all(&reports);
    app.stop().await?;
    // The summary goes to the test's output either way: what was covered matters too.
    eprintln!(
        "{}",
        text.lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    if !output.status.success() {
        bail!("schemathesis reported failures ({}):\n{text}", output.status);
    }
    Ok(())
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("gad-schemathesis-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_serve_swagger_ui_and_every_documented_operation_is_routed() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let docs = app.client.get(format!("{}/docs", app.http)).send().await?;
    assert_eq!(docs.status(), StatusCode::OK);
    let html = docs.text().await?;
    assert!(html.contains("<base href=\"/docs/\">") && html.contains("swagger-ui"));
    for asset in ["swagger-ui-bundle.js", "swagger-initializer.js", "swagger-ui.css"] {
        let r = app.client.get(format!("{}/docs/{asset}", app.http)).send().await?;
        assert_eq!(r.status(), StatusCode::OK, "/docs/{asset}");
        if asset == "swagger-initializer.js" {
            assert!(r.text().await?.contains("/api/v1/openapi.json"));
        }
    }

    let doc: Value = app
        .client
        .get(format!("{}/api/v1/openapi.json", app.http))
        .send()
        .await?
        .json()
        .await?;
    let paths = doc["paths"].as_object().context("no paths")?;
    for (template, item) in paths {
        let path = concrete(template);
        for method in item.as_object().into_iter().flat_map(|m| m.keys()) {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes())?;
            // No token: a routed operation answers 401 (or its own public answer);
            // an unrouted one would answer the fallback's 404 `route` or a 405.
            let r = app
                .client
                .request(method.clone(), format!("{}{path}", app.http))
                .send()
                .await?;
            let status = r.status();
            let body: Value = r.json().await.unwrap_or_default();
            let fallback = status == StatusCode::NOT_FOUND && body["message"] == "route not found";
            assert!(
                !fallback && status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {template} is documented but not routed ({status})"
            );
        }
    }
    app.stop().await
}

/// A path with its parameters filled in with values each route accepts.
fn concrete(template: &str) -> String {
    template
        .replace("{accion}", "start")
        .replace("{area}", "auth")
        .replace("{rest}", "x")
        .replace("{usuario_id}", "1")
        .replace(
            "{id}",
            if template.contains("/jobs/") {
                "0190a0a0-0000-7000-8000-000000000000"
            } else {
                "1"
            },
        )
}
