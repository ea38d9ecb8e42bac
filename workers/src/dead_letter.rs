//! Dead-letter records on `GAD_DLQ`: the original payload and headers plus
//! why and after how many attempts, written before the message is terminated
//! so a job that will not be retried is never silently gone. The stream is
//! read by operators and kept for days, so fields named like secrets are
//! blanked in the copy (the same rule as the `jobs` row).

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;
use gad_shared::envelope::{self, CONTENT_TYPE_JSON, headers};
use gad_shared::job::{JobError, kind_spec};
use gad_shared::queue::Delivery;
use gad_shared::topology::Topology;

use crate::job_store::redact;

/// The record's header names, shared with the operators' DLQ controls that read them.
pub use gad_shared::dlq::header;

/// The message a record copies: a delivery, or one read from the stream by
/// sequence (a job that hit `max_deliver` is no longer delivered to anyone).
pub struct Original<'a> {
    pub subject: &'a str,
    pub headers: Option<&'a HeaderMap>,
    pub payload: &'a Bytes,
}

impl<'a> From<&'a Delivery> for Original<'a> {
    fn from(m: &'a Delivery) -> Self {
        Original {
            subject: m.subject.as_str(),
            headers: m.headers.as_ref(),
            payload: &m.payload,
        }
    }
}

/// `kind` is `None` for an undecodable message (kept with its raw bytes).
pub async fn write<'a>(
    js: &jetstream::Context,
    topology: &Topology,
    original: impl Into<Original<'a>>,
    job_id: Option<&str>,
    kind: Option<&str>,
    attempts: u32,
    error: &JobError,
) -> Result<(), jetstream::context::PublishError> {
    let original = original.into();
    // The original's message id is left out: the copy must not be
    // deduplicated against it.
    let mut hdrs: HeaderMap = original
        .headers
        .iter()
        .flat_map(|h| h.iter())
        .filter(|(name, _)| !AsRef::<str>::as_ref(name).eq_ignore_ascii_case("Nats-Msg-Id"))
        .flat_map(|(name, values)| values.iter().map(move |v| (name.clone(), v.clone())))
        .collect();
    hdrs.insert(header::ORIGINAL_SUBJECT, original.subject);
    hdrs.insert(header::ATTEMPTS, attempts.to_string().as_str());
    hdrs.insert(header::ERROR, serde_json::to_string(error).unwrap_or_default().as_str());
    if let Some(id) = job_id {
        hdrs.insert(header::JOB_ID, id);
    }
    if let Some(k) = kind {
        hdrs.insert(header::KIND, k);
    }
    // Keyed by the delivered message (`<job_id>:r<n>` after a replay), so a
    // replayed job that dies again is not dropped as a duplicate of its first record.
    let delivered = original
        .headers
        .and_then(|h| h.get("Nats-Msg-Id"))
        .map(|v| v.as_str().to_string());
    let msg_id = job_id.map(|id| format!("dlq:{}:{attempts}", delivered.as_deref().unwrap_or(id)));
    let subject = match kind.and_then(kind_spec) {
        Some(spec) => topology.dlq_subject(spec),
        None => topology.dlq_undecodable_subject(),
    };
    let content_type = hdrs.get(headers::CONTENT_TYPE).map(|v| v.as_str().to_string());
    let payload = match without_secrets(original.payload, content_type.as_deref()) {
        Some(redacted) => {
            hdrs.insert(header::REDACTED, "true");
            redacted
        }
        None => original.payload.clone(),
    };
    let mut publish = PublishMessage::build().payload(payload).headers(hdrs);
    if let Some(id) = msg_id {
        publish = publish.message_id(id);
    }
    js.send_publish(subject, publish).await?.await?;
    Ok(())
}

/// The payload with every field named like a secret blanked, or `None` when
/// there was nothing to blank (the copy then keeps the original bytes, so a
/// replay is byte-identical). Bytes that are neither MessagePack nor JSON
/// cannot be searched and are kept as they are.
pub fn without_secrets(payload: &Bytes, content_type: Option<&str>) -> Option<Bytes> {
    let value: serde_json::Value = envelope::decode(payload, content_type).ok()?;
    let redacted = redact(&value);
    if redacted == value {
        return None;
    }
    if content_type.is_some_and(|c| c.starts_with(CONTENT_TYPE_JSON)) {
        serde_json::to_vec(&redacted).ok().map(Bytes::from)
    } else {
        envelope::encode(&redacted).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(payload: serde_json::Value) -> serde_json::Value {
        json!({"v": 1, "job_id": "0193a1b2-0000-7000-8000-000000000001", "kind": "user.create", "payload": payload})
    }

    #[test]
    fn secrets_are_blanked_in_msgpack_and_json_copies() {
        let original = job(json!({"email": "a@b.c", "password": "hunter2-secret"}));
        let packed = envelope::encode(&original).unwrap_or_default();
        let copy = without_secrets(&packed, None).unwrap_or_default();
        let back: serde_json::Value = envelope::decode(&copy, None).unwrap_or_default();
        assert_eq!(back["payload"]["password"], "<redacted>");
        assert_eq!(back["payload"]["email"], "a@b.c");
        assert_eq!(back["kind"], "user.create");

        let text = Bytes::from(serde_json::to_vec(&original).unwrap_or_default());
        let copy = without_secrets(&text, Some(CONTENT_TYPE_JSON)).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&copy).contains("hunter2"));
    }

    #[test]
    fn payloads_without_secrets_or_unreadable_are_left_alone() {
        let packed = envelope::encode(&job(json!({"lat": 1.0}))).unwrap_or_default();
        assert_eq!(without_secrets(&packed, None), None);
        assert_eq!(without_secrets(&Bytes::from_static(b"\xc1garbage"), None), None);
    }
}
