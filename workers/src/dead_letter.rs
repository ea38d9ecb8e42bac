//! Dead-letter records on `GAD_DLQ`: the original payload and headers plus
//! why and after how many attempts, written before the message is terminated
//! so a job that will not be retried is never silently gone.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;
use gad_shared::job::{JobError, kind_spec};
use gad_shared::topology::Topology;

pub mod header {
    pub const JOB_ID: &str = "Gad-Job-Id";
    pub const KIND: &str = "Gad-Kind";
    pub const ATTEMPTS: &str = "Gad-Attempts";
    pub const ERROR: &str = "Gad-Error";
    pub const ORIGINAL_SUBJECT: &str = "Gad-Original-Subject";
}

/// The message a record copies: a delivery, or one read from the stream by
/// sequence (a job that hit `max_deliver` is no longer delivered to anyone).
pub struct Original<'a> {
    pub subject: &'a str,
    pub headers: Option<&'a HeaderMap>,
    pub payload: &'a Bytes,
}

impl<'a> From<&'a jetstream::Message> for Original<'a> {
    fn from(m: &'a jetstream::Message) -> Self {
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
    let mut publish = PublishMessage::build().payload(original.payload.clone()).headers(hdrs);
    if let Some(id) = msg_id {
        publish = publish.message_id(id);
    }
    js.send_publish(subject, publish).await?.await?;
    Ok(())
}
