//! Makes a business job idempotent: its `jobs` row is locked at the start of
//! the business transaction and marked succeeded in it, so the effects and
//! "this job is done" commit together. A redelivery then finds the job done
//! and returns the stored result instead of applying anything twice.

use gad_shared::job::JobResult;
use uuid::Uuid;

use super::Tx;

/// Locks the job's row; `Some(result)` when an earlier delivery already committed.
pub async fn lock(tx: &mut Tx<'_>, job_id: Uuid) -> Result<Option<JobResult>, sqlx::Error> {
    let row: Option<(String, Option<serde_json::Value>)> =
        sqlx::query_as("SELECT status::text, result FROM jobs WHERE job_id = $1 FOR UPDATE")
            .bind(job_id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(match row {
        Some((status, Some(result))) if status == "succeeded" => serde_json::from_value(result).ok(),
        _ => None,
    })
}

/// Records success in the same transaction as the effects.
pub async fn complete(tx: &mut Tx<'_>, job_id: Uuid, result: &JobResult) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE jobs SET status = 'succeeded', result = $2, error = NULL, finished_at = now() WHERE job_id = $1",
    )
    .bind(job_id)
    .bind(serde_json::json!(result))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
