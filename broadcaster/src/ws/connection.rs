//! One WebSocket connection: authentication at connect, the `connection_ack`,
//! then the read loop (client frames, heartbeat, token expiry) while the
//! writer task drains the connection's bounded queue.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures::StreamExt;
use gad_shared::auth::{AuthError, Caller};
use serde_json::json;
use tokio::sync::mpsc;

use crate::frames::{self, ClientFrame, ServerFrame, close};
use crate::hub::{Capacity, ConnHandle, ConnId};
use crate::state::AppState;
use crate::ws::resume::{self, ResumeError};
use crate::ws::topics::{Decision, authorize};
use crate::ws::writer;

const MAX_TOPICS_PER_REQUEST: usize = 100;
/// More invalid frames than this in a minute closes the connection (1008).
const MAX_INVALID_FRAMES_PER_MINUTE: usize = 10;

pub async fn connect(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    // The header wins over the query parameter (§8).
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::to_string)
        .or_else(|| query.get("token").cloned());
    let token = token.map(|t| t.trim().to_string()).unwrap_or_default();
    let auth = match token.is_empty() {
        true => Err(AuthError::Missing),
        false => state.verifier.verify(&token),
    };
    let cfg = &state.settings.broadcaster;
    ws.max_message_size(cfg.max_client_frame_bytes)
        .max_frame_size(cfg.max_client_frame_bytes)
        // Idle connections are the common case: keep their buffers small.
        // Client frames are a few hundred bytes; a larger one is read in steps.
        .read_buffer_size(2 * 1024)
        .write_buffer_size(16 * 1024)
        .on_upgrade(move |socket| {
            // Tracked, so shutdown can wait for the closes it asked for.
            let connections = state.connections.clone();
            connections.track_future(serve(socket, state, auth))
        })
}

async fn reject(mut socket: WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.send(Message::Close(Some(frame)))).await;
}

async fn serve(socket: WebSocket, state: AppState, auth: Result<Caller, AuthError>) {
    let caller = match auth {
        Ok(c) => c,
        Err(AuthError::Missing) => return reject(socket, close::POLICY, "authentication_required").await,
        Err(_) => return reject(socket, close::POLICY, "invalid_token").await,
    };
    let settings = state.settings.clone();
    let cfg = &settings.broadcaster;
    if state.draining.is_cancelled() {
        return reject(socket, close::TRY_LATER, "draining").await;
    }
    if state.new_connections.check().is_err() {
        metrics::counter!(gad_shared::metric_names::WS_CONNECTIONS_REFUSED, "reason" => "rate").increment(1);
        return reject(socket, close::TRY_LATER, "over_capacity").await;
    }
    let (tx, rx) = mpsc::channel(cfg.queue_frames);
    let handle = ConnHandle::new(tx, cfg.queue_bytes, caller.user_id);
    let capacity = Capacity {
        per_node: cfg.max_connections,
        per_user: cfg.max_connections_per_user,
    };
    let id = match state.hub.try_add(handle.clone(), capacity) {
        Ok(id) => id,
        Err(e) => {
            tracing::debug!(reason = %e, "connection refused");
            metrics::counter!(gad_shared::metric_names::WS_CONNECTIONS_REFUSED, "reason" => "capacity").increment(1);
            return reject(socket, close::TRY_LATER, "over_capacity").await;
        }
    };
    let own = format!("user.{}", caller.user_id);
    state.hub.subscribe(id, &own);
    metrics::gauge!(gad_shared::metric_names::WS_CONNECTIONS_ACTIVE).increment(1.0);

    handle.offer(frames::control(
        "connection_ack",
        json!({
            "connection_id": uuid::Uuid::now_v7(),
            "server_time": gad_shared::time::format(&chrono::Utc::now()),
            "user_id": caller.user_id,
            "nivel": caller.nivel,
            "heartbeat_interval_s": cfg.ping_interval.as_secs(),
            "subscribed": [own],
            "resume": {
                "supported": true,
                "retention_events": cfg.history_events_per_topic,
                "retention_s": cfg.history_max_age.as_secs(),
            },
        }),
    ));
    let (sink, stream) = socket.split();
    let writer = tokio::spawn(writer::run(
        sink,
        rx,
        handle.clone(),
        cfg.write_deadline,
        cfg.close_linger,
    ));
    let mut conn = Conn {
        id,
        caller,
        handle: handle.clone(),
        state: state.clone(),
        missed_pongs: 0,
        invalid: Vec::new(),
    };
    conn.read_loop(stream, cfg.ping_interval, cfg.missed_pongs).await;
    state.hub.remove(id);
    metrics::gauge!(gad_shared::metric_names::WS_CONNECTIONS_ACTIVE).decrement(1.0);
    let _ = writer.await;
}

/// How often a connection's token is checked against the revocation mirror
/// (which follows the bucket's watch): well inside the 5 s of §8.
const REVOCATION_CHECK: Duration = Duration::from_secs(2);

struct Conn {
    id: ConnId,
    caller: Caller,
    handle: ConnHandle,
    state: AppState,
    missed_pongs: u32,
    /// When recent invalid frames arrived (for the per-minute limit).
    invalid: Vec<Instant>,
}

impl Conn {
    async fn read_loop(
        &mut self,
        mut stream: futures::stream::SplitStream<WebSocket>,
        ping_every: Duration,
        max_missed: u32,
    ) {
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
        let mut revocation = tokio::time::interval_at(tokio::time::Instant::now() + REVOCATION_CHECK, REVOCATION_CHECK);
        loop {
            let expires_in =
                Duration::from_secs((self.caller.expires_at - chrono::Utc::now().timestamp()).max(0) as u64);
            tokio::select! {
                _ = self.handle.closing.cancelled() => break,
                _ = ping.tick() => {
                    if self.missed_pongs >= max_missed {
                        self.handle.close(close::HEARTBEAT_TIMEOUT);
                        break;
                    }
                    self.missed_pongs += 1;
                    self.handle.offer(frames::control("ping", json!({ "server_time": gad_shared::time::format(&chrono::Utc::now()) })));
                }
                _ = revocation.tick() => {
                    if self.state.verifier.is_revoked(&self.caller) {
                        self.handle.close(close::REVOKED);
                        break;
                    }
                }
                _ = tokio::time::sleep(expires_in) => {
                    self.handle.close(close::REVOKED);
                    break;
                }
                msg = stream.next() => match msg {
                    // Boxed: handling a frame (a resume reads the stream)
                    // makes a large future, and inline it would size every
                    // idle connection's task for it.
                    Some(Ok(Message::Text(text))) => Box::pin(self.on_text(&text)).await,
                    Some(Ok(Message::Binary(_))) => self.invalid_frame("binary frames are not supported"),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => self.missed_pongs = 0,
                    Some(Ok(Message::Close(_))) | None => {
                        self.handle.close(1000);
                        break;
                    }
                    Some(Err(e)) => {
                        let too_big = e.to_string().to_ascii_lowercase().contains("too long");
                        self.handle.close(if too_big { 1009 } else { 1011 });
                        break;
                    }
                },
            }
        }
    }

    fn invalid_frame(&mut self, message: &str) {
        let now = Instant::now();
        self.invalid
            .retain(|t| now.duration_since(*t) < Duration::from_secs(60));
        self.invalid.push(now);
        if self.invalid.len() > MAX_INVALID_FRAMES_PER_MINUTE {
            self.handle.close(close::POLICY);
        } else {
            self.handle.offer(frames::error("invalid_frame", message));
        }
    }

    async fn on_text(&mut self, text: &str) {
        let Ok(frame) = serde_json::from_str::<ClientFrame>(text) else {
            return self.invalid_frame("frames are JSON objects {event_type, data}");
        };
        match frame.event_type.as_str() {
            "subscribe" => self.subscribe(&frame.data).await,
            "unsubscribe" => {
                let topics = topic_list(&frame.data);
                for t in &topics {
                    if *t != format!("user.{}", self.caller.user_id) {
                        self.state.hub.unsubscribe(self.id, t);
                    }
                }
                self.handle
                    .offer(frames::control("unsubscribed", json!({ "topics": topics })));
            }
            "pong" => self.missed_pongs = 0,
            "auth" => self.renew(&frame.data),
            "resume" => self.resume(&frame.data).await,
            "ack" => {}
            _ => self.invalid_frame("unknown event_type"),
        }
    }

    async fn subscribe(&mut self, data: &serde_json::Value) {
        let topics = topic_list(data);
        if topics.is_empty() || topics.len() > MAX_TOPICS_PER_REQUEST {
            return self.invalid_frame("subscribe takes 1 to 100 topics");
        }
        let (mut granted, mut denied, mut current) = (Vec::new(), Vec::new(), Vec::new());
        for topic in topics {
            match authorize(&self.state, &self.caller, &topic).await {
                Decision::Allow => {
                    let seq = self.state.hub.subscribe(self.id, &topic);
                    granted.push(json!({ "topic": topic, "seq": seq }));
                }
                Decision::AllowJob(record) => {
                    // Subscribed before the status is sent, so no update falls in between.
                    let seq = self.state.hub.subscribe(self.id, &topic);
                    granted.push(json!({ "topic": topic, "seq": seq }));
                    current.push((topic, record));
                }
                Decision::Deny(reason) => denied.push(json!({ "topic": topic, "reason": reason })),
            }
        }
        self.handle.offer(frames::control(
            "subscribed",
            json!({ "topics": granted, "denied": denied }),
        ));
        for (topic, record) in current {
            let data = record.job_updated_data();
            let frame = ServerFrame {
                event_type: "job_updated",
                data: &data,
                timestamp: chrono::Utc::now(),
                message_id: uuid::Uuid::now_v7(),
                topic: Some(&topic),
                seq: None,
            };
            self.handle.offer(frame.to_text());
        }
    }

    /// `resume {topic, last_seq}`: the topic's events after `last_seq`, then
    /// `subscribed`; `resync_required` when the gap is beyond retention.
    async fn resume(&mut self, data: &serde_json::Value) {
        let topic = data.get("topic").and_then(|t| t.as_str()).map(str::to_string);
        let last_seq = data.get("last_seq").and_then(|s| s.as_u64());
        let (Some(topic), Some(last_seq)) = (topic, last_seq) else {
            return self.invalid_frame("resume takes {topic, last_seq}");
        };
        if let Decision::Deny(reason) = authorize(&self.state, &self.caller, &topic).await {
            self.handle.offer(frames::control(
                "subscribed",
                json!({ "topics": [], "denied": [{ "topic": topic, "reason": reason }] }),
            ));
            return;
        }
        match resume::resume(&self.state, self.id, &self.handle, &topic, last_seq).await {
            Ok(seq) => {
                self.handle.offer(frames::control(
                    "subscribed",
                    json!({ "topics": [{ "topic": topic, "seq": seq }], "denied": [] }),
                ));
            }
            Err(ResumeError::Resync(_)) => {
                self.handle.offer(frames::control(
                    "error",
                    json!({ "error": "resync_required", "message": "events after last_seq are no longer retained; reload and subscribe again", "topic": topic }),
                ));
            }
            Err(ResumeError::SlowConsumer) => self.handle.close(close::SLOW_CONSUMER),
            Err(ResumeError::Stream(e)) => {
                // The client reconnects with backoff and resumes again.
                tracing::warn!(error = %e, topic, "resume could not read GAD_EVENTS");
                self.handle.close(close::INTERNAL);
            }
        }
    }

    fn renew(&mut self, data: &serde_json::Value) {
        let token = data.get("token").and_then(|t| t.as_str()).unwrap_or_default();
        match self.state.verifier.verify(token) {
            Ok(c) if c.user_id == self.caller.user_id => {
                self.caller = c;
            }
            _ => {
                self.handle.offer(frames::error(
                    "invalid_token",
                    "the token is not valid for this connection",
                ));
            }
        }
    }
}

/// `data.topics`, or its alias `data.events`.
fn topic_list(data: &serde_json::Value) -> Vec<String> {
    data.get("topics")
        .or_else(|| data.get("events"))
        .and_then(|t| t.as_array())
        .map(|a| a.iter().filter_map(|t| t.as_str()).map(str::to_string).collect())
        .unwrap_or_default()
}
