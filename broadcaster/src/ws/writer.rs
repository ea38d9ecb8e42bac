//! A connection's writer: the only task that touches the socket's send half.
//! It writes every frame already queued, then flushes once (one syscall for a
//! burst), each batch under the write deadline.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::SinkExt;
use futures::stream::SplitSink;
use tokio::sync::mpsc;

use crate::frames::close;
use crate::hub::ConnHandle;

/// Frames written between two flushes at most.
const MAX_BATCH: usize = 256;

pub async fn run(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Utf8Bytes>,
    handle: ConnHandle,
    deadline: Duration,
    linger: Duration,
) {
    loop {
        let first = tokio::select! {
            biased;
            _ = handle.closing.cancelled() => break,
            f = rx.recv() => match f { Some(f) => f, None => break },
        };
        let (mut bytes, mut frames) = (first.len(), 1u64);
        let write = async {
            sink.feed(Message::Text(first)).await?;
            for _ in 1..MAX_BATCH {
                let Ok(more) = rx.try_recv() else { break };
                bytes += more.len();
                frames += 1;
                sink.feed(Message::Text(more)).await?;
            }
            sink.flush().await
        };
        match tokio::time::timeout(deadline, write).await {
            Ok(Ok(())) => {
                handle.written(bytes);
                // Once per batch, not per frame: cheap at a million frames a second.
                metrics::counter!(gad_shared::metric_names::WS_FRAMES_SENT).increment(frames);
            }
            Ok(Err(_)) => {
                handle.close(1000);
                return;
            }
            Err(_) => {
                handle.close(close::SLOW_CONSUMER);
                break;
            }
        }
    }
    let code = handle.close_code.load(Ordering::Relaxed);
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason(code)),
    };
    // Queued behind whatever the socket still holds: a slow client that
    // reads again gets every frame sent so far, then the close code.
    let _ = tokio::time::timeout(linger, sink.send(Message::Close(Some(frame)))).await;
}

fn reason(code: u16) -> &'static str {
    match code {
        close::SLOW_CONSUMER => "slow_consumer",
        close::HEARTBEAT_TIMEOUT => "heartbeat_timeout",
        close::REVOKED => "revoked",
        close::GOING_AWAY => "draining",
        close::TRY_LATER => "over_capacity",
        close::POLICY => "policy_violation",
        close::INTERNAL => "internal_error",
        _ => "",
    }
}
