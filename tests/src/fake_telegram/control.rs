//! The fake's control routes under `/_fake/`, for the binary: what a test
//! does with [`super::FakeTelegram`]'s methods, over HTTP.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{Fault, Shared};

pub(super) async fn control_push(State(shared): State<Shared>, Json(mut update): Json<Value>) -> Json<Value> {
    let id = {
        let mut inner = shared.lock();
        let id = inner.next_update_id;
        inner.next_update_id += 1;
        update["update_id"] = json!(id);
        inner.updates.push_back(update);
        id
    };
    shared.new_update.notify_waiters();
    Json(json!({ "update_id": id }))
}

pub(super) async fn control_calls(State(shared): State<Shared>) -> Json<Value> {
    let calls: Vec<Value> = shared
        .lock()
        .calls
        .iter()
        .map(|c| json!({ "method": c.method, "status": c.status, "body": c.body, "message_id": c.message_id }))
        .collect();
    Json(json!(calls))
}

/// `{"fault": "429" | "500" | "403", "seconds": n, "retry_after": s, "chat_id": c}`.
pub(super) async fn control_faults(State(shared): State<Shared>, Json(spec): Json<Value>) -> StatusCode {
    let mut inner = shared.lock();
    let seconds = spec["seconds"].as_u64().unwrap_or(5);
    let fault = match spec["fault"].as_str() {
        Some("429") => Fault::TooManyRequests {
            retry_after: spec["retry_after"].as_u64().unwrap_or(1) as u32,
        },
        Some("500") => Fault::ServerError,
        Some("403") => match spec["chat_id"].as_i64() {
            Some(chat) => {
                inner.blocked_chats.insert(chat);
                return StatusCode::NO_CONTENT;
            }
            None => Fault::Blocked,
        },
        _ => return StatusCode::UNPROCESSABLE_ENTITY,
    };
    let start = inner
        .faults
        .back()
        .map(|&(_, until)| until)
        .unwrap_or_else(Instant::now);
    inner.faults.push_back((fault, start + Duration::from_secs(seconds)));
    StatusCode::NO_CONTENT
}
