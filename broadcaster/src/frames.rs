//! WebSocket frames (§8): the server's JSON shape and the client's.

use axum::extract::ws::Utf8Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Serialize)]
pub struct ServerFrame<'a> {
    pub event_type: &'a str,
    pub data: &'a serde_json::Value,
    #[serde(with = "gad_shared::time::millis")]
    pub timestamp: DateTime<Utc>,
    pub message_id: Uuid,
    pub topic: Option<&'a str>,
    pub seq: Option<u64>,
}

impl ServerFrame<'_> {
    pub fn to_text(&self) -> Utf8Bytes {
        Utf8Bytes::from(serde_json::to_string(self).unwrap_or_default())
    }
}

/// A control frame (no topic, no sequence).
pub fn control(event_type: &str, data: serde_json::Value) -> Utf8Bytes {
    ServerFrame {
        event_type,
        data: &data,
        timestamp: Utc::now(),
        message_id: Uuid::now_v7(),
        topic: None,
        seq: None,
    }
    .to_text()
}

pub fn error(code: &str, message: &str) -> Utf8Bytes {
    control("error", serde_json::json!({ "error": code, "message": message }))
}

#[derive(Debug, Deserialize)]
pub struct ClientFrame {
    pub event_type: String,
    #[serde(default)]
    pub data: serde_json::Value,
}

/// Close codes of §8.
pub mod close {
    pub const GOING_AWAY: u16 = 1001;
    pub const POLICY: u16 = 1008;
    pub const INTERNAL: u16 = 1011;
    pub const TRY_LATER: u16 = 1013;
    pub const SLOW_CONSUMER: u16 = 4000;
    pub const HEARTBEAT_TIMEOUT: u16 = 4001;
    pub const REVOKED: u16 = 4003;
}
