//! One dead-letter record as operators see it: the `Job` shape of §6.3 (from
//! the `jobs` row when there is one, else from the record itself) plus where
//! the record sits in the stream. Undecodable records have no job id; they
//! are addressed by their stream sequence.

use std::collections::HashMap;

use async_nats::jetstream::message::StreamMessage;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::header;
use crate::envelope::{JobEnvelope, headers};
use crate::job::{JobError, JobRecord, JobResult, JobStatus};

/// How `/dlq/{id}` names a record: a job id, or a stream sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DlqId {
    Job(Uuid),
    Sequence(u64),
}

impl DlqId {
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        if let Ok(id) = Uuid::parse_str(raw) {
            return Some(DlqId::Job(id));
        }
        raw.parse::<u64>().ok().filter(|s| *s > 0).map(DlqId::Sequence)
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DlqEntry {
    pub job_id: Option<Uuid>,
    pub kind: Option<String>,
    pub status: JobStatus,
    pub attempts: u32,
    pub max_attempts: u32,
    pub submitted_by: Option<i64>,
    pub payload_summary: serde_json::Value,
    pub result: Option<JobResult>,
    pub error: Option<JobError>,
    #[serde(with = "crate::time::option_millis")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::time::option_millis")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::time::option_millis")]
    pub finished_at: Option<DateTime<Utc>>,
    pub dlq: Placement,
}

/// Where the record is, and what the worker noted when it wrote it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Placement {
    pub seq: u64,
    pub subject: String,
    pub original_subject: Option<String>,
    #[serde(with = "crate::time::millis")]
    pub stored_at: DateTime<Utc>,
    pub undecodable: bool,
    pub redacted: bool,
}

/// What the record itself says, before the `jobs` row is consulted.
pub struct Parsed {
    pub message: StreamMessage,
    pub envelope: Option<JobEnvelope>,
}

impl Parsed {
    pub fn new(message: StreamMessage) -> Self {
        let content_type = message
            .headers
            .get(headers::CONTENT_TYPE)
            .map(|v| v.as_str().to_string());
        // Records of undecodable messages carry no job id: they stay raw.
        let envelope = message
            .headers
            .get(header::JOB_ID)
            .and_then(|_| JobEnvelope::decode(&message.payload, content_type.as_deref()).ok());
        Self { message, envelope }
    }

    pub fn job_id(&self) -> Option<Uuid> {
        self.envelope.as_ref().map(|e| e.job_id)
    }

    pub fn redacted(&self) -> bool {
        self.message.headers.get(header::REDACTED).is_some()
    }

    fn text(&self, name: &str) -> Option<String> {
        self.message.headers.get(name).map(|v| v.as_str().to_string())
    }

    pub fn placement(&self) -> Placement {
        let nanos = self.message.time.unix_timestamp_nanos();
        Placement {
            seq: self.message.sequence,
            subject: self.message.subject.to_string(),
            original_subject: self.text(header::ORIGINAL_SUBJECT),
            stored_at: DateTime::from_timestamp_nanos(nanos.clamp(0, i64::MAX as i128) as i64),
            undecodable: self.envelope.is_none(),
            redacted: self.redacted(),
        }
    }

    /// The entry from the row when there is one, else from the record.
    pub fn entry(&self, row: Option<&JobRecord>) -> DlqEntry {
        let placement = self.placement();
        if let Some(r) = row {
            return DlqEntry {
                job_id: Some(r.job_id),
                kind: Some(r.kind.clone()),
                status: r.status,
                attempts: r.attempts,
                max_attempts: r.max_attempts,
                submitted_by: r.submitted_by,
                payload_summary: r.payload_summary.clone(),
                result: r.result.clone(),
                error: r.error.clone(),
                created_at: Some(r.created_at),
                started_at: r.started_at,
                finished_at: r.finished_at,
                dlq: placement,
            };
        }
        let attempts = self.text(header::ATTEMPTS).and_then(|a| a.parse().ok()).unwrap_or(0);
        let error = self.text(header::ERROR).and_then(|e| serde_json::from_str(&e).ok());
        let env = self.envelope.as_ref();
        DlqEntry {
            job_id: env.map(|e| e.job_id),
            kind: env.map(|e| e.kind.clone()).or_else(|| self.text(header::KIND)),
            status: JobStatus::Dead,
            attempts,
            max_attempts: env
                .and_then(|e| crate::job::kind_spec(&e.kind))
                .map(|s| s.max_attempts)
                .unwrap_or(attempts),
            submitted_by: env.and_then(|e| e.submitted_by),
            payload_summary: serde_json::json!({}),
            result: None,
            error,
            created_at: env.map(|e| e.submitted_at),
            started_at: None,
            finished_at: Some(placement.stored_at),
            dlq: placement,
        }
    }
}

/// The entries of `messages`, each joined with its `jobs` row (one query).
pub async fn load(db: &PgPool, messages: Vec<StreamMessage>) -> Result<Vec<DlqEntry>, sqlx::Error> {
    let parsed: Vec<Parsed> = messages.into_iter().map(Parsed::new).collect();
    let ids: Vec<Uuid> = parsed.iter().filter_map(Parsed::job_id).collect();
    let rows: HashMap<Uuid, JobRecord> = super::record::load_many(db, &ids)
        .await?
        .into_iter()
        .map(|r| (r.job_id, r))
        .collect();
    Ok(parsed
        .iter()
        .map(|p| p.entry(p.job_id().and_then(|id| rows.get(&id))))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_job_uuids_or_positive_sequences() {
        let id = Uuid::now_v7();
        assert_eq!(DlqId::parse(&id.to_string()), Some(DlqId::Job(id)));
        assert_eq!(DlqId::parse("42"), Some(DlqId::Sequence(42)));
        assert_eq!(DlqId::parse("0"), None);
        assert_eq!(DlqId::parse("-1"), None);
        assert_eq!(DlqId::parse("nope"), None);
    }
}
