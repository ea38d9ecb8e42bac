//! A row of the file as a job, or as a rejection: checked with the handler's
//! rules ([`ImportKind::check`]), its job id derived from what the row is, and
//! the envelope, headers and `queued` record built the way ingress builds them.

use gad_shared::error_body::FieldError;
use gad_shared::submit::{NewJob, Prepared, prepare};
use gad_shared::topology::Topology;
use serde_json::Value;
use uuid::Uuid;

use super::kind::ImportKind;
use super::source::SourceRow;

/// The namespace of import job ids (UUIDv5): fixed, so a row gets the same id
/// in every run, on every machine.
const JOB_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6761_6469_6d70_5000_8000_0000_0000_0001);

/// A row that will not be published, as the rejects file lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reject {
    pub line: u64,
    pub reasons: Vec<FieldError>,
    pub raw: String,
}

/// The row's job, or why there is none. `with_status`: the `queued` record
/// will be written, so it carries the row as its summary (else the copy of
/// the row would be made for nothing).
pub fn plan(kind: ImportKind, topology: &Topology, row: SourceRow, with_status: bool) -> Result<Prepared, Reject> {
    let SourceRow { line, raw, payload } = row;
    let reject = |reasons| Reject {
        line,
        reasons,
        raw: raw.clone(),
    };
    let payload = Value::Object(payload.map_err(reject)?);
    let key = kind.check(&payload).map_err(reject)?;
    let job = NewJob {
        job_id: job_id(kind, &key, &payload),
        kind: kind.job_kind(),
        summary: if with_status { payload.clone() } else { Value::Null },
        payload,
        request_id: None,
        // Imports run as the system.
        submitted_by: None,
        client: None,
    };
    prepare(topology, job).map_err(|e| reject(vec![FieldError::new("row", "unencodable", e.to_string())]))
}

/// The job id of a row: UUIDv5 of the kind, the natural key and the row's
/// content. The same row gets the same id in every run, so publishing it again
/// is dropped by JetStream's duplicate window, and a worker given it again
/// finds its `jobs` row finished. A row whose content changed is a new job,
/// so re-importing an edited file applies the edits (an upsert).
pub fn job_id(kind: ImportKind, natural_key: &str, payload: &Value) -> Uuid {
    let name = format!("{}\n{natural_key}\n{payload}", kind.job_kind());
    Uuid::new_v5(&JOB_ID_NAMESPACE, name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_same_row_gets_the_same_id_and_another_row_another() {
        let a = json!({"codigo_interno": "EF-1", "usuario_email": "a@b.example"});
        let b = json!({"codigo_interno": "EF-1", "usuario_email": "a@b.example", "rango": "cabo"});
        let id = job_id(ImportKind::Efectivos, "EF-1", &a);
        assert_eq!(id, job_id(ImportKind::Efectivos, "EF-1", &a.clone()));
        assert_eq!(id.get_version_num(), 5);
        assert_ne!(id, job_id(ImportKind::Efectivos, "EF-1", &b));
        assert_ne!(id, job_id(ImportKind::Locations, "EF-1", &a));
    }
}
