//! Replaying a dead job: the job goes back to `queued` with a fresh attempt
//! budget and is published again from its dead-letter record, under the
//! message id `<job_id>:r<n>` so the jobs stream's duplicate window does not
//! drop it as the original. It goes to whichever broker carries the jobs.
//!
//! The row is locked while the message is published and released by the
//! commit: a worker that picks the new message at once waits on the lock and
//! then finds the row `queued`. Should the commit fail after the publish, the
//! worker finds the row still `dead` and acknowledges the message unrun.

use async_nats::HeaderMap;
use chrono::Utc;
use serde_json::json;

use super::entry::{DlqEntry, DlqId, Parsed};
use super::record::{self, Audit};
use super::scan::Reader;
use super::{Actor, DlqError, DlqOps, header};
use crate::envelope::headers;
use crate::job::{JobRecord, JobStatus, kind_spec};
use crate::queue::rabbit::is_delivery_bookkeeping;

/// Message ids tried when earlier replays' ids are still in the duplicate window.
const MAX_ID_TRIES: i64 = 8;

impl DlqOps {
    pub async fn replay(&self, id: DlqId, actor: &Actor) -> Result<DlqEntry, DlqError> {
        let reader = Reader::new(self).await?;
        let (found, all) = self.find(&reader, id).await?;
        let parsed = Parsed::new(found);
        let Some(job) = parsed.envelope.clone() else {
            return Err(DlqError::Undecodable);
        };
        if parsed.redacted() {
            return Err(DlqError::Redacted);
        }
        let spec = kind_spec(&job.kind).ok_or(DlqError::Undecodable)?;
        let mut tx = self.db.begin().await?;
        let before = record::lock(&mut tx, job.job_id).await?;
        let before = match before {
            Some(r) if r.status != JobStatus::Dead => return Err(DlqError::NotDead(r.status)),
            Some(r) => r,
            // Purged by retention while the record stayed: rebuilt from it.
            None => record_from(&parsed),
        };
        let done = record::replays(&mut tx, job.job_id).await?;
        let n = self
            .publish(&parsed, &self.topology.job_subject(spec), job.job_id, done)
            .await?;
        let after = JobRecord {
            status: JobStatus::Queued,
            attempts: 0,
            result: None,
            error: None,
            started_at: None,
            finished_at: None,
            ..before.clone()
        };
        record::store(&mut tx, &after).await?;
        record::audit(
            &mut tx,
            Audit {
                action: "dlq_replayed",
                resource_id: job.job_id.to_string(),
                job_id: Some(job.job_id),
                before: json!(before),
                after: json!({ "status": after.status, "message_id": format!("{}:r{n}", job.job_id) }),
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

    /// Publishes the record's payload as job `r<n>`; returns `n`.
    async fn publish(&self, parsed: &Parsed, subject: &str, job_id: uuid::Uuid, done: i64) -> Result<i64, DlqError> {
        for n in done + 1..=done + MAX_ID_TRIES {
            let msg_id = format!("{job_id}:r{n}");
            let duplicate = self
                .publisher
                .publish(
                    subject,
                    &original_headers(&parsed.message.headers),
                    &parsed.message.payload,
                    &msg_id,
                )
                .await
                .map_err(|e| DlqError::Nats(e.to_string()))?;
            // A duplicate means an earlier replay published `r<n>` and then
            // failed to commit; that message was acknowledged unrun.
            if !duplicate {
                return Ok(n);
            }
        }
        Err(DlqError::Nats(
            "every replay message id is still in the duplicate window".into(),
        ))
    }

    /// The record `id` names, and every record of the same job.
    pub(super) async fn find(
        &self,
        reader: &Reader,
        id: DlqId,
    ) -> Result<
        (
            async_nats::jetstream::message::StreamMessage,
            Vec<async_nats::jetstream::message::StreamMessage>,
        ),
        DlqError,
    > {
        match id {
            DlqId::Sequence(seq) => {
                let m = reader.by_sequence(seq).await?.ok_or(DlqError::NotFound)?;
                Ok((m.clone(), vec![m]))
            }
            DlqId::Job(job_id) => {
                let all = reader.of_job(&self.topology.dlq_filter(), &job_id.to_string()).await?;
                let newest = all.last().cloned().ok_or(DlqError::NotFound)?;
                Ok((newest, all))
            }
        }
    }

    /// The bucket follows the committed row, unless a worker already wrote
    /// something newer than the `dead` it replaces.
    pub(super) async fn publish_status(&self, record: &JobRecord) {
        let Ok(value) = crate::envelope::encode(record) else {
            return;
        };
        let key = record.job_id.to_string();
        let written = async {
            let entry = self.status.entry(key.as_str()).await.map_err(|e| e.to_string())?;
            let current = entry
                .as_ref()
                .filter(|e| e.operation == async_nats::jetstream::kv::Operation::Put)
                .and_then(|e| crate::envelope::decode::<JobRecord>(&e.value, None).ok());
            match (entry, current) {
                (Some(e), Some(c)) if c.status == JobStatus::Dead => {
                    self.status
                        .update(key.as_str(), value, e.revision)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                (Some(_), Some(_)) => {}
                (Some(e), None) => {
                    self.status
                        .update(key.as_str(), value, e.revision)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                (None, _) => {
                    self.status
                        .create(key.as_str(), value)
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
            Ok::<_, String>(())
        };
        match tokio::time::timeout(self.timeout, written).await {
            Ok(Ok(())) => {}
            // Polls fall back to the row once the entry expires; the row is right.
            Ok(Err(e)) => tracing::warn!(job_id = %key, error = %e, "job status not updated after a DLQ action"),
            Err(_) => tracing::warn!(job_id = %key, "job status not updated after a DLQ action: timeout"),
        }
    }
}

/// The original job's headers: the dead-letter bookkeeping and the message id
/// are left out (the new id is set by the caller).
fn original_headers(stored: &HeaderMap) -> HeaderMap {
    let ours = [
        header::JOB_ID,
        header::KIND,
        header::ATTEMPTS,
        header::ERROR,
        header::ORIGINAL_SUBJECT,
        header::REDACTED,
        headers::MSG_ID,
    ];
    stored
        .iter()
        .filter(|(name, _)| {
            let name: &str = name.as_ref();
            // The replay starts a fresh attempt budget.
            !ours.iter().any(|o| o.eq_ignore_ascii_case(name)) && !is_delivery_bookkeeping(name)
        })
        .flat_map(|(name, values)| values.iter().map(move |v| (name.clone(), v.clone())))
        .collect()
}

fn record_from(parsed: &Parsed) -> JobRecord {
    let e = parsed.entry(None);
    JobRecord {
        job_id: e.job_id.unwrap_or_default(),
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
