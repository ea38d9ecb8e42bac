//! A fake Telegram Bot API server: what the broadcaster's teloxide bot talks
//! to in tests and in the local run, over HTTP through its API URL setting,
//! exactly as it would talk to Telegram.
//!
//! A test scripts the updates the bot receives ([`FakeTelegram::push_update`],
//! served by `getUpdates`, or [`FakeTelegram::post_webhook`] for the webhook
//! style), reads back every call the bot made ([`FakeTelegram::calls`]), and
//! injects failures: a schedule of phases (429 with `retry_after`, 5xx) for
//! every send, and 403 for chats that "blocked the bot".
//!
//! The same server runs as a binary (`fake_telegram`); its control routes
//! under `/_fake/` do over HTTP what the methods do in a test.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use updates::unix_now;
use updates::{message_from, private_chat};

mod control;
mod faults;
mod form;
mod updates;
mod webhook;

pub use faults::Fault;
use faults::{fault_answer, fault_for};
pub use webhook::WebhookDelivery;

/// The bot's own user id, as `getMe` reports it.
pub const BOT_ID: i64 = 7_000_000_001;
/// Longest `getUpdates` long poll the fake holds, whatever the client asks.
const MAX_POLL: Duration = Duration::from_secs(10);

/// One call the bot made, with what the fake answered.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub body: Value,
    /// When it arrived, on the test's clock.
    pub at: Instant,
    /// HTTP status of the answer (200 for a success).
    pub status: u16,
    /// `message_id` of the message a successful send created.
    pub message_id: Option<i64>,
}

impl Call {
    pub fn chat_id(&self) -> Option<i64> {
        self.body.get("chat_id").and_then(Value::as_i64)
    }
    pub fn text(&self) -> Option<&str> {
        self.body.get("text").and_then(Value::as_str)
    }
    pub fn ok(&self) -> bool {
        self.status == 200
    }
}

#[derive(Default)]
struct Inner {
    updates: VecDeque<Value>,
    next_update_id: i64,
    next_message_id: i64,
    calls: Vec<Call>,
    /// Phases of failures, each until its deadline; the first unexpired wins.
    faults: VecDeque<(Fault, Instant)>,
    blocked_chats: HashSet<i64>,
    /// Set by `setWebhook`: updates are then POSTed there, not polled.
    webhook: Option<webhook::Webhook>,
    /// Every POST of an update to the webhook, in order.
    webhook_deliveries: Vec<WebhookDelivery>,
}

#[derive(Clone, Default)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    new_update: Arc<Notify>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running fake; dropping it stops the server.
pub struct FakeTelegram {
    addr: SocketAddr,
    shared: Shared,
    stop: CancellationToken,
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl FakeTelegram {
    /// Binds `addr` (port 0 for any) and serves until dropped.
    pub async fn start(addr: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Shared {
            inner: Arc::new(Mutex::new(Inner {
                next_update_id: 1,
                next_message_id: 1,
                ..Inner::default()
            })),
            new_update: Arc::new(Notify::new()),
        };
        let stop = CancellationToken::new();
        let app = router(shared.clone());
        let until = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { until.cancelled().await })
                .await;
        });
        tokio::spawn(webhook::deliver(shared.clone(), stop.clone()));
        Ok(Self { addr, shared, stop })
    }

    /// The base URL to configure as the bot's API URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues an update (a `message`, `callback_query`, …) for `getUpdates`;
    /// its `update_id` is assigned here and returned.
    pub fn push_update(&self, mut update: Value) -> i64 {
        let id = {
            let mut inner = self.shared.lock();
            let id = inner.next_update_id;
            inner.next_update_id += 1;
            update["update_id"] = json!(id);
            inner.updates.push_back(update);
            id
        };
        self.shared.new_update.notify_waiters();
        id
    }

    /// Delivers `update` the webhook way: POSTed to `url` with the secret header.
    pub async fn post_webhook(&self, url: &str, secret: &str, update: &Value) -> anyhow::Result<u16> {
        let response = reqwest::Client::new()
            .post(url)
            .header("X-Telegram-Bot-Api-Secret-Token", secret)
            .timeout(Duration::from_secs(5))
            .json(update)
            .send()
            .await?;
        Ok(response.status().as_u16())
    }

    /// Every call so far, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// Successful calls of `method`.
    pub fn sent(&self, method: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method && c.ok())
            .collect()
    }

    /// Successful calls of `method` to `chat_id`.
    pub fn sent_to(&self, method: &str, chat_id: i64) -> Vec<Call> {
        self.sent(method)
            .into_iter()
            .filter(|c| c.chat_id() == Some(chat_id))
            .collect()
    }

    /// Waits until `wanted` holds for the calls so far; fails after `within`.
    pub async fn wait_for(&self, within: Duration, wanted: impl Fn(&[Call]) -> bool) -> anyhow::Result<Vec<Call>> {
        let deadline = Instant::now() + within;
        loop {
            let calls = self.calls();
            if wanted(&calls) {
                return Ok(calls);
            }
            if Instant::now() >= deadline {
                let summary: Vec<String> = calls
                    .iter()
                    .map(|c| format!("{} {} {}", c.method, c.status, c.body))
                    .collect();
                anyhow::bail!("condition not met within {within:?}; calls: {summary:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/{bot}/{method}", post(api).get(api))
        .route("/_fake/updates", post(control::control_push))
        .route("/_fake/calls", get(control::control_calls))
        .route("/_fake/faults", post(control::control_faults))
        .with_state(shared)
}

/// One Bot API call, its parameters as JSON or multipart form; the path is
/// `/bot<token>/<method>`.
async fn api(
    State(shared): State<Shared>,
    Path((bot, method)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    if !bot.starts_with("bot") {
        return error(StatusCode::NOT_FOUND, "Not Found", None);
    }
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let body = form::parameters(content_type, &body);
    // Telegram's method names are case-insensitive and teloxide writes
    // `SendMessage`; calls are recorded as the Bot API documents them.
    let method = lower_first(&method);
    if method == "getUpdates" {
        if shared.lock().webhook.is_some() {
            // What Telegram answers while a webhook is set.
            return error(
                StatusCode::CONFLICT,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
                None,
            );
        }
        return get_updates(&shared, &body).await;
    }
    let mut inner = shared.lock();
    let now = Instant::now();
    let answer = match fault_for(&mut inner, &method, &body, now) {
        Some(fault) => fault_answer(fault),
        None => success(&mut inner, &method, &body),
    };
    let message_id = answer.1.0["result"]["message_id"].as_i64();
    inner.calls.push(Call {
        method,
        body,
        at: now,
        status: answer.0.as_u16(),
        message_id,
    });
    drop(inner);
    // A webhook just set may have updates waiting for it.
    shared.new_update.notify_waiters();
    answer
}

fn lower_first(method: &str) -> String {
    let mut chars = method.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

fn success(inner: &mut Inner, method: &str, body: &Value) -> (StatusCode, Json<Value>) {
    let result = match method {
        "setWebhook" | "deleteWebhook" | "getWebhookInfo" => webhook::method(inner, method, body),
        "getMe" => json!({ "id": BOT_ID, "is_bot": true, "first_name": "GAD", "username": "gad_bot",
                           "can_join_groups": false, "can_read_all_group_messages": false,
                           "supports_inline_queries": false }),
        "sendMessage" | "sendLocation" | "editMessageText" | "editMessageReplyMarkup" => {
            let chat = body.get("chat_id").and_then(Value::as_i64).unwrap_or_default();
            let message_id = match body.get("message_id").and_then(Value::as_i64) {
                Some(id) => id,
                None => {
                    let id = inner.next_message_id;
                    inner.next_message_id += 1;
                    id
                }
            };
            let mut message = message_from(BOT_ID, body.get("text").and_then(Value::as_str).unwrap_or(""));
            message["message_id"] = json!(message_id);
            message["chat"] = private_chat(chat);
            if method == "sendLocation" {
                if let Some(m) = message.as_object_mut() {
                    m.remove("text");
                }
                message["location"] = json!({ "latitude": body["latitude"], "longitude": body["longitude"] });
            }
            if let Some(markup) = body.get("reply_markup").filter(|m| m.get("inline_keyboard").is_some()) {
                message["reply_markup"] = markup.clone();
            }
            message
        }
        _ => json!(true),
    };
    (StatusCode::OK, Json(json!({ "ok": true, "result": result })))
}

async fn get_updates(shared: &Shared, body: &Value) -> (StatusCode, Json<Value>) {
    let offset = body.get("offset").and_then(Value::as_i64).unwrap_or(0);
    let wait = body
        .get("timeout")
        .and_then(Value::as_u64)
        .map(Duration::from_secs)
        .unwrap_or_default()
        .min(MAX_POLL);
    let deadline = Instant::now() + wait;
    loop {
        // Registered before looking, so an update pushed in between still wakes us.
        let notified = shared.new_update.notified();
        let ready: Vec<Value> = {
            let mut inner = shared.lock();
            // Telegram forgets updates below the offset a client confirmed.
            inner
                .updates
                .retain(|u| u["update_id"].as_i64().unwrap_or_default() >= offset);
            inner.updates.iter().cloned().collect()
        };
        if !ready.is_empty() || Instant::now() >= deadline {
            return (StatusCode::OK, Json(json!({ "ok": true, "result": ready })));
        }
        let _ = tokio::time::timeout_at(deadline, notified).await;
    }
}

pub(super) fn error(status: StatusCode, description: &str, parameters: Option<Value>) -> (StatusCode, Json<Value>) {
    let mut body = json!({ "ok": false, "error_code": status.as_u16(), "description": description });
    if let Some(p) = parameters {
        body["parameters"] = p;
    }
    (status, Json(body))
}
