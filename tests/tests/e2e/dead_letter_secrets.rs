//! A job that dies keeps no secret anywhere: its dead-letter copy on
//! `GAD_DLQ`, its `jobs` row and its status carry `<redacted>` where the
//! request had a password (domain.md §2.1 jobs, architecture.md DLQ).

use std::time::Duration;

use gad_e2e::{TestApp, spawn_app};
use gad_shared::envelope;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::auth::{Body, send};

const PASSWORD: &str = "clave-muy-secreta-77";

/// Every insert into usuarios fails with a serialization failure, which the
/// workers retry: the job exhausts its attempts and is dead-lettered.
async fn make_user_inserts_fail(app: &TestApp) -> anyhow::Result<()> {
    sqlx::raw_sql(
        "CREATE FUNCTION test_fail_usuarios() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'forced by the test' USING ERRCODE = '40001'; END $$;
         CREATE TRIGGER test_fail_usuarios BEFORE INSERT ON usuarios
           FOR EACH ROW EXECUTE FUNCTION test_fail_usuarios();",
    )
    .execute(&app.db)
    .await?;
    Ok(())
}

async fn dead_letters(
    app: &TestApp,
    within: Duration,
) -> anyhow::Result<Vec<async_nats::jetstream::message::StreamMessage>> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let mut stream = app.js.get_stream(app.topology.dlq_stream()).await?;
        let last = stream.info().await?.state.last_sequence;
        if last > 0 {
            let mut out = Vec::new();
            for seq in 1..=last {
                if let Ok(m) = stream.get_raw_message(seq).await {
                    out.push(m);
                }
            }
            return Ok(out);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no dead letter within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_dead_job_keeps_no_password_in_its_dead_letter_or_row() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    make_user_inserts_fail(&app).await?;
    let body = json!({
        "email": "muerto@example.org",
        "password": PASSWORD,
        "nombre": "Nadie",
        "apellido": "Nunca",
        "dni": "DEAD-0001",
    });
    let r = send(
        &app,
        Method::POST,
        "/api/v1/users",
        Some(&app.admin.token),
        Body::Json(&body),
        &[("prefer", "respond-async")],
    )
    .await?;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let job_id = r.body["job_id"].as_str().unwrap_or_default().to_string();
    let job = app
        .wait_for_job(&job_id, &app.admin.token, Duration::from_secs(30))
        .await?;
    assert_eq!(job["status"], "dead", "{job}");
    assert!(!job.to_string().contains(PASSWORD), "{job}");

    let letters = dead_letters(&app, Duration::from_secs(10)).await?;
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert!(
        !String::from_utf8_lossy(&letter.payload).contains(PASSWORD),
        "the dead-letter copy carries the password"
    );
    let content_type = letter.headers.get("Content-Type").map(|v| v.as_str().to_string());
    let copy: Value = envelope::decode(&letter.payload, content_type.as_deref())?;
    assert_eq!(copy["job_id"], job_id.as_str());
    assert_eq!(copy["payload"]["password"], "<redacted>");
    assert_eq!(copy["payload"]["email"], "muerto@example.org");
    assert_eq!(letter.headers.get("Gad-Redacted").map(|v| v.as_str()), Some("true"));
    for (name, values) in letter.headers.iter() {
        for v in values {
            assert!(!v.as_str().contains(PASSWORD), "header {name} carries the password");
        }
    }

    // The copy lacks the secret, so it cannot be replayed as it was.
    let r = send(
        &app,
        Method::POST,
        &format!("/api/v1/admin/dlq/{job_id}/replay"),
        Some(&app.admin.token),
        Body::None,
        &[],
    )
    .await?;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(r.body["error"], "dlq_redacted");

    let row: (Value, Option<Value>) = sqlx::query_as("SELECT payload_summary, error FROM jobs WHERE job_id = $1::uuid")
        .bind(&job_id)
        .fetch_one(&app.db)
        .await?;
    assert!(!format!("{row:?}").contains(PASSWORD), "{row:?}");
    app.stop().await
}
