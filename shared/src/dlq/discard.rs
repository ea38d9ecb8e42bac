//! Discarding a dead job: it becomes `cancelled` with `error.error =
//! "discarded"` and its records leave the stream. An undecodable record has
//! no job; discarding it removes the record, audited all the same.

use chrono::Utc;
use serde_json::json;

use super::entry::{DlqEntry, DlqId, Parsed};
use super::record::{self, Audit};
use super::scan::Reader;
use super::{Actor, DlqError, DlqOps};
use crate::job::{JobError, JobRecord, JobStatus};

pub const DISCARDED: &str = "discarded";

impl DlqOps {
    pub async fn discard(&self, id: DlqId, actor: &Actor) -> Result<DlqEntry, DlqError> {
        let reader = Reader::new(self).await?;
        let (found, all) = self.find(&reader, id).await?;
        let parsed = Parsed::new(found);
        let mut tx = self.db.begin().await?;
        let Some(job_id) = parsed.job_id() else {
            let mut entry = parsed.entry(None);
            entry.status = JobStatus::Cancelled;
            entry.error = Some(discarded());
            record::audit(
                &mut tx,
                Audit {
                    action: "dlq_discarded",
                    resource_id: format!("dlq:{}", parsed.message.sequence),
                    job_id: None,
                    before: json!(parsed.entry(None)),
                    after: json!({ "status": entry.status }),
                    actor,
                },
            )
            .await?;
            tx.commit().await?;
            reader.remove(all.iter().map(|m| m.sequence).collect()).await;
            return Ok(entry);
        };
        let before = match record::lock(&mut tx, job_id).await? {
            Some(r) if r.status != JobStatus::Dead => return Err(DlqError::NotDead(r.status)),
            Some(r) => r,
            None => {
                let e = parsed.entry(None);
                JobRecord {
                    job_id,
                    kind: e.kind.unwrap_or_default(),
                    status: JobStatus::Dead,
                    attempts: e.attempts,
                    max_attempts: e.max_attempts,
                    submitted_by: e.submitted_by,
                    payload_summary: e.payload_summary,
                    result: None,
                    error: e.error,
                    created_at: e.created_at.unwrap_or_else(Utc::now),
                    started_at: None,
                    finished_at: e.finished_at,
                }
            }
        };
        let after = JobRecord {
            status: JobStatus::Cancelled,
            error: Some(discarded()),
            finished_at: Some(Utc::now()),
            ..before.clone()
        };
        record::store(&mut tx, &after).await?;
        record::audit(
            &mut tx,
            Audit {
                action: "dlq_discarded",
                resource_id: job_id.to_string(),
                job_id: Some(job_id),
                before: json!(before),
                after: json!(after),
                actor,
            },
        )
        .await?;
        record::announce(&mut tx, &after).await?;
        tx.commit().await?;
        self.publish_status(&after).await;
        reader.remove(all.iter().map(|m| m.sequence).collect()).await;
        Ok(parsed.entry(Some(&after)))
    }
}

fn discarded() -> JobError {
    JobError {
        http_status: 409,
        error: DISCARDED.into(),
        message: "discarded from the dead-letter queue by an operator".into(),
        details: None,
    }
}
