//! An emergency's retries stay inside its 30 s budget (domain.md §4, §2.1
//! jobs): with a lane backoff far longer than the budget, a failing dispatch
//! is still retried in time to give up, fail and alert within the budget.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use gad_shared::envelope::{self, CONTENT_TYPE_MSGPACK, ENVELOPE_VERSION, JobEnvelope, headers};
use gad_shared::job::kind_spec;
use gad_shared::topology::{self, Topology};
use gad_workers::jobs::emergency::dispatch::RETRY_BUDGET;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::custom_app::CustomApp;

/// status, attempts, error, finished_at.
type JobRow = (String, i32, Option<Value>, Option<DateTime<Utc>>);

/// How much of the budget is left when the job is published.
const LEFT: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_dispatch_is_retried_within_its_budget_whatever_the_backoff() -> anyhow::Result<()> {
    let mut app = CustomApp::new(|_| {}).await?;
    // Uncapped, the first retry would come after up to two minutes.
    app.start_workers(|s| {
        s.workers.backoff_base = Duration::from_secs(120);
        s.workers.backoff_cap = Duration::from_secs(600);
    })
    .await?;
    // Every tarea insert fails with a serialization failure, which is retried.
    sqlx::raw_sql(
        "CREATE FUNCTION test_fail_tareas() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'forced by the test' USING ERRCODE = '40001'; END $$;
         CREATE TRIGGER test_fail_tareas BEFORE INSERT ON tareas
           FOR EACH ROW EXECUTE FUNCTION test_fail_tareas();",
    )
    .execute(&app.db)
    .await?;

    let reporter = app.user(gad_e2e::users::SUPERVISOR).await?;
    let submitted_at = Utc::now() - (RETRY_BUDGET - LEFT);
    let job_id = Uuid::now_v7();
    let env = JobEnvelope {
        v: ENVELOPE_VERSION,
        job_id,
        kind: "emergency.dispatch".into(),
        submitted_by: Some(reporter.id),
        submitted_at,
        request_id: None,
        client: None,
        payload: json!({ "lat": -34.6037, "lng": -58.3816, "reporter": { "nombre": "Vecina" } }),
    };
    let (client, js) = topology::connect(&app.iso.nats).await?;
    let spec = kind_spec("emergency.dispatch").context("kind")?;
    let mut hdrs = async_nats::HeaderMap::new();
    hdrs.insert(headers::CONTENT_TYPE, CONTENT_TYPE_MSGPACK);
    hdrs.insert(headers::MSG_ID, job_id.to_string().as_str());
    js.publish_with_headers(
        Topology::new(&app.iso.nats).job_subject(spec),
        hdrs,
        envelope::encode(&env)?,
    )
    .await?
    .await?;

    let deadline = tokio::time::Instant::now() + LEFT + Duration::from_secs(10);
    let (status, attempts, error, finished_at) = loop {
        let row: Option<JobRow> =
            sqlx::query_as("SELECT status::text, attempts, error, finished_at FROM jobs WHERE job_id = $1")
                .bind(job_id)
                .fetch_optional(&app.db)
                .await?;
        match row {
            Some((status, attempts, error, finished)) if gad_e2e::is_terminal(&status) => {
                break (status, attempts, error.unwrap_or_default(), finished);
            }
            other => anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "job not finished in time: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The first delivery failed and was retried; the retry found the budget spent.
    assert_eq!(status, "failed", "{error}");
    assert!(attempts >= 2, "attempts {attempts}");
    assert_eq!(error["error"], "dependency_unavailable");
    let finished_at = finished_at.context("finished_at")?;
    let spent = (finished_at - submitted_at).to_std().unwrap_or_default();
    assert!(
        spent <= RETRY_BUDGET + Duration::from_secs(2),
        "gave up {spent:?} after submission"
    );
    let alerts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox_events WHERE event_type = 'alert' AND job_id = $1 AND payload->>'kind' = 'emergency_unassigned'",
    )
    .bind(job_id)
    .fetch_one(&app.db)
    .await?;
    assert_eq!(alerts, 1);
    drop(client);
    app.stop().await
}
