//! `POST /ws/_test/broadcast` (§6.3, non-production only): emits a
//! `notification` the way the workers emit events, through `GAD_EVENTS`, so
//! every replica delivers it and `resume` can replay it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use gad_shared::envelope::{self, CONTENT_TYPE_MSGPACK, ENVELOPE_VERSION, EventEnvelope, headers};
use gad_shared::http_error::ApiError;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    title: Option<String>,
    content: Option<String>,
    level: Option<String>,
    topic: Option<String>,
}

/// Where a broadcast without a topic goes: every supervisor's board.
const DEFAULT_TOPIC: &str = "alerts";

pub async fn broadcast(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let body: Body = match body.is_empty() {
        true => Body::default(),
        false => serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(e.to_string()))?,
    };
    let level = body.level.unwrap_or_else(|| "info".into());
    if !matches!(level.as_str(), "info" | "warning" | "critical") {
        return Err(ApiError::bad_request("level is info, warning or critical"));
    }
    let topic = body.topic.unwrap_or_else(|| DEFAULT_TOPIC.into());
    if topic.is_empty() || topic.contains(',') {
        return Err(ApiError::bad_request("topic must be one non-empty topic name"));
    }
    let event = EventEnvelope {
        v: ENVELOPE_VERSION,
        event_id: Uuid::now_v7(),
        event_type: "notification".into(),
        data: json!({
            "notification_id": Uuid::now_v7(),
            "kind": "test",
            "title": body.title.unwrap_or_else(|| "Test".into()),
            "content": body.content.unwrap_or_default(),
            "level": level,
        }),
        timestamp: chrono::Utc::now(),
    };
    let payload = envelope::encode(&event).map_err(ApiError::internal)?;
    let mut hdrs = async_nats::HeaderMap::new();
    hdrs.insert(headers::CONTENT_TYPE, CONTENT_TYPE_MSGPACK);
    hdrs.insert(headers::TOPICS, topic.as_str());
    hdrs.insert("Nats-Msg-Id", event.event_id.to_string().as_str());
    let subject = state.topology.event_subject("notification");
    let publish = async {
        state
            .js
            .publish_with_headers(subject, hdrs, payload)
            .await
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())
    };
    let ack = tokio::time::timeout(state.settings.nats.publish_timeout, publish)
        .await
        .map_err(|_| ApiError::dependency_unavailable("nats"))?
        .map_err(|e| {
            tracing::warn!(error = %e, "test broadcast not published");
            ApiError::dependency_unavailable("nats")
        })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "message_id": event.event_id, "topic": topic, "seq": ack.sequence })),
    ))
}
