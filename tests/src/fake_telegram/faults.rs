//! Failures the fake injects instead of doing a call: phases of 429 (with
//! `retry_after`) or 5xx for every send, one after the other, and 403 for
//! chats that "blocked the bot".

use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{FakeTelegram, Inner, error};

/// Methods whose calls count as "sending" and are subject to injected faults.
const SEND_METHODS: [&str; 5] = [
    "sendMessage",
    "editMessageText",
    "editMessageReplyMarkup",
    "sendLocation",
    "answerCallbackQuery",
];

/// A failure the fake answers with instead of doing the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `parameters.retry_after` in seconds.
    TooManyRequests { retry_after: u32 },
    /// 500 Internal Server Error.
    ServerError,
    /// 403 "bot was blocked by the user".
    Blocked,
}

impl FakeTelegram {
    /// Answers every send with `fault` for `lasting`, after the phases already set.
    pub fn fail_for(&self, fault: Fault, lasting: Duration) {
        let mut inner = self.shared.lock();
        let start = inner
            .faults
            .back()
            .map(|&(_, until)| until)
            .unwrap_or_else(Instant::now);
        inner.faults.push_back((fault, start + lasting));
    }

    /// Every send to `chat_id` is answered 403 from now on.
    pub fn block_chat(&self, chat_id: i64) {
        self.shared.lock().blocked_chats.insert(chat_id);
    }
}

/// The fault to answer `method` with now, if any.
pub(super) fn fault_for(inner: &mut Inner, method: &str, body: &Value, now: Instant) -> Option<Fault> {
    if !SEND_METHODS.contains(&method) {
        return None;
    }
    while inner.faults.front().is_some_and(|&(_, until)| until <= now) {
        inner.faults.pop_front();
    }
    if let Some(&(fault, _)) = inner.faults.front() {
        return Some(fault);
    }
    let chat = body.get("chat_id").and_then(Value::as_i64)?;
    inner.blocked_chats.contains(&chat).then_some(Fault::Blocked)
}

pub(super) fn fault_answer(fault: Fault) -> (StatusCode, Json<Value>) {
    match fault {
        Fault::TooManyRequests { retry_after } => error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too Many Requests: retry after {retry_after}"),
            Some(json!({ "retry_after": retry_after })),
        ),
        Fault::ServerError => error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error", None),
        Fault::Blocked => error(StatusCode::FORBIDDEN, "Forbidden: bot was blocked by the user", None),
    }
}
