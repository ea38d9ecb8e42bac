//! Jobs as the pipeline sees them: the kinds and the worker group (lane) each
//! belongs to, the status lifecycle, and the fast status record kept in the
//! NATS key-value bucket where ingress and WebSocket subscribers read it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What the job table of `domain.md` §6.1 and `architecture.md` say about one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindSpec {
    pub name: &'static str,
    pub group: &'static str,
    pub max_attempts: u32,
    /// Whether a running job of this kind may be cancelled (cooperatively).
    pub cancellable: bool,
    /// Changes nothing, so running it twice is harmless: the worker skips the
    /// separate "running" bookkeeping and records the outcome once.
    pub read_only: bool,
}

const fn spec(name: &'static str, group: &'static str) -> KindSpec {
    KindSpec {
        name,
        group,
        max_attempts: 5,
        cancellable: false,
        read_only: false,
    }
}

/// Every job kind the pipeline accepts. A table rather than an enum so a new
/// kind is one line and importers' kinds are validated the same way.
pub const KINDS: &[KindSpec] = &[
    KindSpec {
        cancellable: true,
        read_only: true,
        ..spec("geo.nearest", "geo")
    },
    KindSpec {
        cancellable: true,
        read_only: true,
        ..spec("geo.map_view", "geo")
    },
    KindSpec {
        max_attempts: 8,
        ..spec("emergency.dispatch", "emergency")
    },
    spec("task.create", "tasks"),
    spec("task.update", "tasks"),
    spec("task.delete", "tasks"),
    spec("task.transition", "tasks"),
    spec("task.assign", "tasks"),
    spec("task.unassign", "tasks"),
    spec("task.respond", "tasks"),
    spec("user.create", "tasks"),
    spec("user.update", "tasks"),
    spec("user.delete", "tasks"),
    spec("efectivo.create", "tasks"),
    spec("efectivo.update", "tasks"),
    spec("efectivo.delete", "tasks"),
    spec("efectivo.location", "tasks"),
    spec("efectivo.disponibilidad", "tasks"),
    spec("telegram.unlink", "tasks"),
    // Does nothing: importers probe the pipeline with it, and the workers
    // benchmark measures the framework's own cost (pull, row, status, ack).
    KindSpec {
        read_only: true,
        ..spec("import.noop", "import")
    },
    spec("import.efectivos", "import"),
    spec("import.tareas", "import"),
    spec("import.locations", "import"),
];

/// The worker groups, each with its own durable consumer.
pub const GROUPS: &[&str] = &["geo", "tasks", "emergency", "import"];

pub fn kind_spec(kind: &str) -> Option<&'static KindSpec> {
    KINDS.iter().find(|k| k.name == kind)
}

impl KindSpec {
    /// Subject suffix under `gad.jobs.`: the group, then the kind with its first
    /// segment dropped when that segment repeats the group
    /// (`geo.nearest` → `geo.nearest`, `task.create` → `tasks.task.create`).
    pub fn subject_suffix(&self) -> String {
        match self.name.split_once('.') {
            Some((head, tail)) if head == self.group => format!("{}.{}", self.group, tail),
            _ => format!("{}.{}", self.group, self.name),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "job_status", rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Dead,
    Cancelled,
}

impl JobStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Dead | JobStatus::Cancelled
        )
    }
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Dead => "dead",
            JobStatus::Cancelled => "cancelled",
        }
    }
}

/// The answer a waiting client gets for a succeeded job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobResult {
    pub http_status: u16,
    pub body: serde_json::Value,
}

/// The last error of a job, in the §7 shape plus the status a waiting client gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobError {
    pub http_status: u16,
    pub error: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

/// A job's status as served to clients (`GET /api/v1/jobs/{id}`), stored in the
/// job-status bucket and, durably, in the `jobs` row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobRecord {
    pub job_id: Uuid,
    pub kind: String,
    pub status: JobStatus,
    pub attempts: u32,
    pub max_attempts: u32,
    pub submitted_by: Option<i64>,
    #[serde(default)]
    pub payload_summary: serde_json::Value,
    pub result: Option<JobResult>,
    pub error: Option<JobError>,
    #[serde(with = "crate::time::millis")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::time::option_millis")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::time::option_millis")]
    pub finished_at: Option<DateTime<Utc>>,
}

/// A `job_updated` frame carries the result only below this size (§8);
/// larger results are fetched over HTTP.
pub const MAX_EVENT_RESULT_BYTES: usize = 64 * 1024;

impl JobRecord {
    /// The `data` of a `job_updated` event (§8).
    pub fn job_updated_data(&self) -> serde_json::Value {
        let mut data = serde_json::json!({
            "job_id": self.job_id,
            "kind": self.kind,
            "status": self.status,
            "attempts": self.attempts,
        });
        if let Some(result) = &self.result {
            let value = serde_json::json!(result);
            if value.to_string().len() < MAX_EVENT_RESULT_BYTES {
                data["result"] = value;
            }
        }
        if let Some(error) = &self.error {
            data["error"] = serde_json::json!(error);
        }
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_follow_the_architecture_table() {
        let suffix = |k: &str| kind_spec(k).map(|s| s.subject_suffix());
        assert_eq!(suffix("geo.nearest").as_deref(), Some("geo.nearest"));
        assert_eq!(suffix("emergency.dispatch").as_deref(), Some("emergency.dispatch"));
        assert_eq!(suffix("task.create").as_deref(), Some("tasks.task.create"));
        assert_eq!(suffix("import.tareas").as_deref(), Some("import.tareas"));
        assert_eq!(suffix("geo.unknown"), None);
    }

    #[test]
    fn job_updated_leaves_out_results_of_64_kib_or_more() {
        let record = |body: serde_json::Value| JobRecord {
            job_id: Uuid::now_v7(),
            kind: "geo.nearest".into(),
            status: JobStatus::Succeeded,
            attempts: 1,
            max_attempts: 5,
            submitted_by: Some(1),
            payload_summary: serde_json::Value::Null,
            result: Some(JobResult { http_status: 200, body }),
            error: None,
            created_at: Utc::now(),
            started_at: None,
            finished_at: None,
        };
        let small = record(serde_json::json!({"items": []})).job_updated_data();
        assert_eq!(small["result"]["http_status"], 200);
        assert_eq!(small["status"], "succeeded");
        let big = record(serde_json::json!({"blob": "x".repeat(MAX_EVENT_RESULT_BYTES)})).job_updated_data();
        assert!(big.get("result").is_none());
    }

    #[test]
    fn every_kind_belongs_to_a_known_group_and_groups_do_not_overlap() {
        for k in KINDS {
            assert!(GROUPS.contains(&k.group), "{} has unknown group", k.name);
            let subject = k.subject_suffix();
            let owners: Vec<_> = GROUPS
                .iter()
                .filter(|g| subject.starts_with(&format!("{g}.")))
                .collect();
            assert_eq!(
                owners,
                vec![&k.group],
                "{subject} must match exactly its own group's filter"
            );
        }
    }
}
