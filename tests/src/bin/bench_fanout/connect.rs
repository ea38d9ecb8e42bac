//! Opening one benchmark connection: the bearer-token handshake, the
//! `connection_ack`, an optional subscription; 1013 (over capacity, or the
//! node's new-connection rate) and network errors are retried with jittered
//! exponential backoff.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use futures::{SinkExt, StreamExt};
use rand::Rng;
use serde_json::json;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, header::AUTHORIZATION};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub type Ws = WebSocketStream<TcpStream>;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one connection keeps retrying after 1013 or a network error.
const CONNECT_DEADLINE: Duration = Duration::from_secs(120);

/// How connecting went.
#[derive(Debug, Default)]
pub struct ConnectReport {
    pub established: usize,
    pub failed: BTreeMap<String, u64>,
    /// 1013 answers that were retried.
    pub try_later: u64,
    pub elapsed: Duration,
}

impl ConnectReport {
    pub fn failures(&self) -> String {
        if self.failed.is_empty() {
            return "none".into();
        }
        self.failed
            .iter()
            .map(|(k, v)| format!("{k}×{v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

enum Refused {
    TryLater,
    Transient(anyhow::Error),
    Fatal(anyhow::Error),
}

/// Connects (retrying 1013 and network errors with jittered backoff)
/// and subscribes; returns the socket and how many 1013s it met.
pub async fn connect(
    addr: &str,
    token: &str,
    topic: Option<&str>,
    config: WebSocketConfig,
) -> anyhow::Result<(Ws, u64)> {
    let deadline = Instant::now() + CONNECT_DEADLINE;
    let mut backoff = Duration::from_millis(250);
    let mut try_later = 0;
    loop {
        let why = match connect_once(addr, token, config).await {
            Ok(mut ws) => {
                if let Some(topic) = topic {
                    subscribe(&mut ws, topic).await?;
                }
                return Ok((ws, try_later));
            }
            Err(Refused::Fatal(e)) => return Err(e),
            Err(Refused::TryLater) => {
                try_later += 1;
                anyhow!("1013 over_capacity until the deadline")
            }
            Err(Refused::Transient(e)) => e,
        };
        if Instant::now() + backoff > deadline {
            return Err(why);
        }
        let pause = rand::rng().random_range(backoff / 2..=backoff);
        tokio::time::sleep(pause).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn connect_once(addr: &str, token: &str, config: WebSocketConfig) -> Result<Ws, Refused> {
    let fatal = |e: anyhow::Error| Refused::Fatal(e);
    let mut request = format!("ws://{addr}/ws/connect")
        .into_client_request()
        .map_err(|e| fatal(anyhow!("request: {e}")))?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| fatal(anyhow!("token: {e}")))?;
    request.headers_mut().insert(AUTHORIZATION, bearer);
    let tcp = match tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => return Err(Refused::Transient(anyhow!("tcp connect: {}", e.kind()))),
        Err(_) => return Err(Refused::Transient(anyhow!("tcp connect timed out"))),
    };
    let _ = tcp.set_nodelay(true);
    let handshake = tokio_tungstenite::client_async_with_config(request, tcp, Some(config));
    let mut ws = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => return Err(Refused::Transient(anyhow!("handshake: {e}"))),
        Err(_) => return Err(Refused::Transient(anyhow!("handshake timed out"))),
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) if t.as_str().contains("\"connection_ack\"") => Ok(ws),
        Ok(Some(Ok(Message::Close(Some(f))))) if u16::from(f.code) == 1013 => Err(Refused::TryLater),
        Ok(Some(Ok(Message::Close(f)))) => Err(fatal(anyhow!(
            "closed at connect: {}",
            f.map_or("no code".into(), |f| format!("{} {}", u16::from(f.code), f.reason))
        ))),
        Ok(Some(Ok(other))) => Err(fatal(anyhow!("first frame is not connection_ack: {other:?}"))),
        Ok(Some(Err(e))) => Err(Refused::Transient(anyhow!("reading connection_ack: {e}"))),
        Ok(None) => Err(Refused::Transient(anyhow!("closed before connection_ack"))),
        Err(_) => Err(Refused::Transient(anyhow!("no connection_ack"))),
    }
}

/// Sends `subscribe {topics: [topic]}` and waits for `subscribed` granting it.
async fn subscribe(ws: &mut Ws, topic: &str) -> anyhow::Result<()> {
    let frame = json!({ "event_type": "subscribe", "data": { "topics": [topic] } });
    ws.send(Message::text(frame.to_string()))
        .await
        .context("sending subscribe")?;
    let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .context("no `subscribed` answer")?
            .context("closed before `subscribed`")?
            .context("reading `subscribed`")?;
        let Message::Text(text) = msg else { continue };
        let frame: serde_json::Value = serde_json::from_str(text.as_str()).context("a frame is not JSON")?;
        if frame["event_type"] != "subscribed" {
            continue;
        }
        let granted = frame["data"]["topics"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["topic"] == topic));
        if !granted {
            bail!("subscription to {topic} denied: {}", frame["data"]["denied"]);
        }
        return Ok(());
    }
}
