//! The wire format of jobs and events on NATS: versioned MessagePack envelopes
//! (maps with field names, strings for UUIDs and timestamps, so a publisher in
//! any language can produce them), with JSON accepted from importers.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const ENVELOPE_VERSION: u16 = 1;
pub const CONTENT_TYPE_MSGPACK: &str = "application/msgpack";
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// Header names used on every NATS message we publish.
pub mod headers {
    pub const CONTENT_TYPE: &str = "Content-Type";
    pub const MSG_ID: &str = "Nats-Msg-Id";
    pub const TRACEPARENT: &str = "traceparent";
    pub const SUBMITTER: &str = "Gad-Submitter";
    /// Comma-separated WebSocket topics of an event.
    pub const TOPICS: &str = "Gad-Topics";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEnvelope {
    /// Schema version; a consumer refuses versions it does not know.
    pub v: u16,
    pub job_id: Uuid,
    pub kind: String,
    pub submitted_by: Option<i64>,
    pub submitted_at: DateTime<Utc>,
    #[serde(default)]
    pub request_id: Option<String>,
    /// Who sent the request, for the audit row. Optional (and left out when
    /// absent), so envelopes from before it, and from importers, still decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientInfo>,
    /// Kind-specific parameters, validated again by the handler.
    pub payload: serde_json::Value,
}

/// The client of an HTTP request (domain.md §6.4): its address as ingress
/// resolved it (trusted proxies considered) and its user agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    pub v: u16,
    /// UUID v7; the `message_id` WebSocket clients deduplicate by.
    pub event_id: Uuid,
    pub event_type: String,
    pub data: serde_json::Value,
    #[serde(with = "crate::time::millis")]
    pub timestamp: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("undecodable payload: {0}")]
    Decode(String),
    #[error("unsupported envelope version {0}")]
    Version(u16),
    #[error("encoding failed: {0}")]
    Encode(String),
}

pub fn encode<T: Serialize>(value: &T) -> Result<Bytes, EnvelopeError> {
    let mut buf = Vec::with_capacity(256);
    let mut ser = rmp_serde::Serializer::new(&mut buf)
        .with_struct_map()
        .with_human_readable();
    value
        .serialize(&mut ser)
        .map_err(|e| EnvelopeError::Encode(e.to_string()))?;
    Ok(Bytes::from(buf))
}

/// Decodes MessagePack, or JSON when the content type says so.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], content_type: Option<&str>) -> Result<T, EnvelopeError> {
    if content_type.is_some_and(|c| c.starts_with(CONTENT_TYPE_JSON)) {
        return serde_json::from_slice(bytes).map_err(|e| EnvelopeError::Decode(e.to_string()));
    }
    let mut de = rmp_serde::Deserializer::new(bytes).with_human_readable();
    T::deserialize(&mut de).map_err(|e| EnvelopeError::Decode(e.to_string()))
}

impl JobEnvelope {
    pub fn decode(bytes: &[u8], content_type: Option<&str>) -> Result<Self, EnvelopeError> {
        let env: JobEnvelope = decode(bytes, content_type)?;
        if env.v != ENVELOPE_VERSION {
            return Err(EnvelopeError::Version(env.v));
        }
        Ok(env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn envelope(kind: String, submitted_by: Option<i64>, lat: f64) -> JobEnvelope {
        JobEnvelope {
            v: ENVELOPE_VERSION,
            job_id: Uuid::now_v7(),
            kind,
            submitted_by,
            submitted_at: Utc::now(),
            request_id: Some("req-1".into()),
            client: Some(ClientInfo {
                ip: Some("203.0.113.7".into()),
                user_agent: None,
            }),
            payload: serde_json::json!({"lat": lat, "lng": -58.4, "k": 5}),
        }
    }

    proptest! {
        #[test]
        fn msgpack_round_trips(kind in "[a-z]{1,10}\\.[a-z_]{1,12}", by in proptest::option::of(any::<i64>()), lat in -90.0f64..90.0) {
            let env = envelope(kind, by, lat);
            let bytes = encode(&env).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back = JobEnvelope::decode(&bytes, Some(CONTENT_TYPE_MSGPACK)).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back, env);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = JobEnvelope::decode(&bytes, None);
            let _ = JobEnvelope::decode(&bytes, Some(CONTENT_TYPE_JSON));
        }
    }

    #[test]
    fn uuids_and_times_are_strings_on_the_wire_so_other_languages_can_publish() {
        let env = envelope("geo.nearest".into(), Some(7), -34.6);
        let bytes = encode(&env).unwrap_or_default();
        let generic: serde_json::Value = rmp_serde::from_slice(&bytes).unwrap_or_default();
        assert_eq!(generic["job_id"], serde_json::Value::String(env.job_id.to_string()));
        assert!(generic["submitted_at"].is_string());
    }

    #[test]
    fn json_from_an_importer_is_accepted_and_wrong_versions_are_refused() {
        let id = Uuid::now_v7();
        let json = format!(
            r#"{{"v":1,"job_id":"{id}","kind":"geo.nearest","submitted_by":null,"submitted_at":"2026-11-28T10:00:00.000Z","payload":{{"lat":1.0}}}}"#
        );
        let env = JobEnvelope::decode(json.as_bytes(), Some("application/json; charset=utf-8"));
        assert!(matches!(env, Ok(ref e) if e.job_id == id));
        let v2 = json.replacen("\"v\":1", "\"v\":2", 1);
        assert!(matches!(
            JobEnvelope::decode(v2.as_bytes(), Some(CONTENT_TYPE_JSON)),
            Err(EnvelopeError::Version(2))
        ));
    }
}
