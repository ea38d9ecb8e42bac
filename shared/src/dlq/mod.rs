//! Operating the dead-letter queue (`domain.md` §6.3): list what `GAD_DLQ`
//! holds, replay a dead job, discard one. The HTTP admin endpoints and the
//! `gad dlq` command both call [`DlqOps`], so the rules (a replay is a new
//! message id with a fresh attempt budget, both actions audited) live once.
//!
//! - [`entry`]: one stored record as operators see it (a `Job` plus where it sits).
//! - [`scan`]: reading the stream (it has no index but subjects).
//! - [`replay`], [`discard`]: the two actions; [`record`]: the row, audit and event they write.

pub mod discard;
pub mod entry;
pub mod record;
pub mod replay;
pub mod scan;

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use sqlx::PgPool;

use crate::job::JobStatus;
use crate::topology::Topology;

pub use entry::{DlqEntry, DlqId};

/// Headers of a dead-letter record, written by `gad_workers::dead_letter`
/// under these same names. `REDACTED` marks a copy whose secrets were
/// blanked, which therefore cannot be replayed.
pub mod header {
    pub const JOB_ID: &str = "Gad-Job-Id";
    pub const KIND: &str = "Gad-Kind";
    pub const ATTEMPTS: &str = "Gad-Attempts";
    pub const ERROR: &str = "Gad-Error";
    pub const ORIGINAL_SUBJECT: &str = "Gad-Original-Subject";
    pub const REDACTED: &str = "Gad-Redacted";
}

#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error("no such dead-letter record")]
    NotFound,
    /// The job left `dead` (replayed or discarded already).
    #[error("the job is {} and not dead", .0.as_str())]
    NotDead(JobStatus),
    /// Raw bytes that never decoded cannot be run again; discard them.
    #[error("an undecodable message cannot be replayed")]
    Undecodable,
    /// Secrets were blanked in the copy: replaying it would submit the placeholder.
    #[error("the record's secrets were blanked; replaying it would submit placeholders")]
    Redacted,
    #[error("nats: {0}")]
    Nats(String),
    #[error("nats did not answer within {0:?}")]
    Timeout(Duration),
    #[error("postgres: {0}")]
    Database(#[from] sqlx::Error),
}

impl DlqError {
    fn nats(e: impl std::fmt::Display) -> Self {
        DlqError::Nats(e.to_string())
    }
}

/// Who acts, for the audit row. `usuario_id` is `None` for the CLI (system).
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub usuario_id: Option<i64>,
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Paging of the list: `kind` narrows it to one subject of the stream.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub kind: Option<String>,
    pub skip: u64,
    pub limit: u64,
}

/// What the operations need: the stream, the jobs table, the status bucket.
#[derive(Clone)]
pub struct DlqOps {
    pub db: PgPool,
    /// Reads the dead-letter stream.
    pub js: jetstream::Context,
    /// Where a replayed job is published (JetStream or RabbitMQ).
    pub publisher: crate::queue::Publisher,
    pub topology: Topology,
    pub status: kv::Store,
    /// Bound on each NATS call (the configured publish timeout).
    pub timeout: Duration,
}

impl DlqOps {
    /// Records in stream order (oldest first, so pages stay put while new
    /// records arrive), with the total the filter matches.
    pub async fn list(&self, query: &ListQuery) -> Result<(Vec<DlqEntry>, u64), DlqError> {
        let filter = match &query.kind {
            Some(kind) => match crate::job::kind_spec(kind) {
                Some(spec) => self.topology.dlq_subject(spec),
                None if kind == "undecodable" => self.topology.dlq_undecodable_subject(),
                None => return Ok((Vec::new(), 0)),
            },
            None => self.topology.dlq_filter(),
        };
        let reader = scan::Reader::new(self).await?;
        let total = reader.count(&filter).await?;
        let messages = reader.page(&filter, query.skip, query.limit).await?;
        let entries = entry::load(&self.db, messages).await?;
        Ok((entries, total))
    }
}
