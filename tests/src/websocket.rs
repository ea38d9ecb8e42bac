//! A WebSocket client as a dashboard would use it: connect with a token,
//! read JSON frames, subscribe to topics. Frames read while looking for a
//! particular one are kept, so no frame is lost to the order of arrival.

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Frames read but not yet handed out.
    pending: VecDeque<Value>,
}

impl WsClient {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let (socket, _response) = tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(url))
            .await
            .context("WebSocket handshake timed out")?
            .context("WebSocket handshake")?;
        Ok(Self {
            socket,
            pending: VecDeque::new(),
        })
    }

    /// [`WsClient::connect`] over a socket whose receive buffer is `bytes`
    /// (the kernel may round it up): a client that stops reading fills it
    /// soon, so the server sees a slow consumer without megabytes in flight.
    pub async fn connect_with_receive_buffer(url: &str, bytes: u32) -> anyhow::Result<Self> {
        let uri: tokio_tungstenite::tungstenite::http::Uri = url.parse().context("parsing the URL")?;
        let host = uri.host().context("URL without a host")?;
        let port = uri.port_u16().context("URL without a port")?;
        let addr = tokio::net::lookup_host((host, port))
            .await?
            .next()
            .context("host did not resolve")?;
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_recv_buffer_size(bytes)?;
        let stream = socket.connect(addr).await.context("connecting")?;
        let (socket, _response) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)),
        )
        .await
        .context("WebSocket handshake timed out")?
        .context("WebSocket handshake")?;
        Ok(Self {
            socket,
            pending: VecDeque::new(),
        })
    }

    /// Sends `resume {topic, last_seq}`.
    pub async fn resume(&mut self, topic: &str, last_seq: u64) -> anyhow::Result<()> {
        self.send_json(&json!({ "event_type": "resume", "data": { "topic": topic, "last_seq": last_seq } }))
            .await
    }

    /// Every frame (buffered, then read) until the server closes, and its
    /// close code (`None`: the connection dropped without one); fails if the
    /// connection is still open after `within`.
    pub async fn read_until_close(&mut self, within: Duration) -> anyhow::Result<(Vec<Value>, Option<u16>)> {
        let deadline = tokio::time::Instant::now() + within;
        let mut frames: Vec<Value> = self.pending.drain(..).collect();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.socket.next()).await {
                Err(_) => bail!("still open after {within:?} ({} frames read)", frames.len()),
                Ok(None) => return Ok((frames, None)),
                Ok(Some(Err(e))) => bail!("reading after {} frames: {e}", frames.len()),
                Ok(Some(Ok(Message::Close(frame)))) => return Ok((frames, frame.map(|f| u16::from(f.code)))),
                Ok(Some(Ok(Message::Text(text)))) => frames
                    .push(serde_json::from_str(text.as_str()).with_context(|| format!("frame is not JSON: {text}"))?),
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// How the server answered a new connection: `Ok` once `connection_ack`
    /// arrives, `Err` with the close code (`None`: dropped without one) when
    /// it refused it instead.
    pub async fn admitted(&mut self, within: Duration) -> anyhow::Result<Result<(), Option<u16>>> {
        match tokio::time::timeout(within, self.socket.next()).await {
            Err(_) => bail!("neither connection_ack nor a close within {within:?}"),
            Ok(None) => Ok(Err(None)),
            Ok(Some(Err(e))) => bail!("reading the first frame: {e}"),
            Ok(Some(Ok(Message::Close(frame)))) => Ok(Err(frame.map(|f| u16::from(f.code)))),
            Ok(Some(Ok(Message::Text(text)))) => {
                let frame: Value =
                    serde_json::from_str(text.as_str()).with_context(|| format!("frame is not JSON: {text}"))?;
                anyhow::ensure!(frame["event_type"] == "connection_ack", "first frame {frame}");
                Ok(Ok(()))
            }
            Ok(Some(Ok(other))) => bail!("unexpected first message {other:?}"),
        }
    }

    /// Sends one client frame as JSON text.
    pub async fn send_json(&mut self, frame: &Value) -> anyhow::Result<()> {
        self.socket
            .send(Message::text(frame.to_string()))
            .await
            .context("sending a frame")
    }

    /// The next server frame, waiting at most `within`.
    pub async fn next_frame(&mut self, within: Duration) -> anyhow::Result<Value> {
        if let Some(frame) = self.pending.pop_front() {
            return Ok(frame);
        }
        self.read(within).await
    }

    /// The next server frame's text, unparsed (for clients that must keep up
    /// with many frames); frames already buffered come first, re-encoded.
    pub async fn next_text(&mut self, within: Duration) -> anyhow::Result<String> {
        if let Some(frame) = self.pending.pop_front() {
            return Ok(frame.to_string());
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.socket.next()).await {
                Err(_) => bail!("no frame within {within:?}"),
                Ok(None) => bail!("the server closed the connection"),
                Ok(Some(message)) => match message.context("reading a frame")? {
                    Message::Text(text) => return Ok(text.as_str().to_string()),
                    Message::Close(frame) => bail!("closed by the server: {frame:?}"),
                    _ => {}
                },
            }
        }
    }

    /// The first frame (buffered or new) that `wanted` accepts; the others
    /// stay buffered for later calls. Fails after `within`.
    pub async fn next_matching(&mut self, within: Duration, wanted: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
        if let Some(i) = self.pending.iter().position(&wanted) {
            return self.pending.remove(i).context("buffered frame vanished");
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self.read(left).await.with_context(|| {
                format!(
                    "no matching frame within {within:?}; frames seen meanwhile: {:?}",
                    self.pending
                )
            })?;
            if wanted(&frame) {
                return Ok(frame);
            }
            self.pending.push_back(frame);
        }
    }

    /// The next frame whose `event_type` is `event_type`.
    pub async fn next_event(&mut self, event_type: &str, within: Duration) -> anyhow::Result<Value> {
        self.next_matching(within, |f| f["event_type"] == event_type).await
    }

    /// Sends `subscribe` and returns the `subscribed` reply.
    pub async fn subscribe(&mut self, topics: &[String]) -> anyhow::Result<Value> {
        self.send_json(&json!({ "event_type": "subscribe", "data": { "topics": topics } }))
            .await?;
        self.next_event("subscribed", Duration::from_secs(5)).await
    }

    /// Closes the connection politely.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.socket.close(None)).await;
    }

    async fn read(&mut self, within: Duration) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = match tokio::time::timeout(left, self.socket.next()).await {
                Err(_) => bail!("no frame within {within:?}"),
                Ok(None) => bail!("the server closed the connection"),
                Ok(Some(message)) => message.context("reading a frame")?,
            };
            match message {
                Message::Text(text) => {
                    return serde_json::from_str(text.as_str()).with_context(|| format!("frame is not JSON: {text}"));
                }
                Message::Binary(bytes) => bail!("unexpected binary frame ({} bytes)", bytes.len()),
                Message::Close(frame) => match frame {
                    Some(f) => bail!("closed by the server: {} {}", u16::from(f.code), f.reason),
                    None => bail!("closed by the server without a code"),
                },
                // Protocol pings are answered by tungstenite itself.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }
}
