//! A connection's bounded outbound queue, as the hub and the connection's
//! own task see it. The hub only ever `try_send`s (a broadcast never waits
//! on a socket); a replay waits, but only for room below half the bounds, so
//! live frames arriving meanwhile still fit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use gad_shared::metric_names;

use crate::frames::close;

/// The sending side of one connection.
#[derive(Clone)]
pub struct ConnHandle {
    tx: mpsc::Sender<Utf8Bytes>,
    queued_bytes: Arc<AtomicUsize>,
    max_bytes: usize,
    /// Signalled by the writer after each flush, for replays waiting for room.
    drained: Arc<Notify>,
    /// Fires to make the connection close; `close_code` says why.
    pub closing: CancellationToken,
    pub close_code: Arc<AtomicU16>,
    pub user_id: i64,
}

/// The queue was full for longer than the write deadline, or the connection closed.
#[derive(Debug, thiserror::Error)]
#[error("the connection's queue did not drain")]
pub struct Stalled;

impl ConnHandle {
    pub fn new(tx: mpsc::Sender<Utf8Bytes>, max_bytes: usize, user_id: i64) -> Self {
        Self {
            tx,
            queued_bytes: Arc::new(AtomicUsize::new(0)),
            max_bytes,
            drained: Arc::new(Notify::new()),
            closing: CancellationToken::new(),
            close_code: Arc::new(AtomicU16::new(1000)),
            user_id,
        }
    }

    /// Queues a frame; false (and the connection is being closed as a slow
    /// consumer) when its queue is full by count or by bytes.
    pub fn offer(&self, frame: Utf8Bytes) -> bool {
        let len = frame.len();
        if self.queued_bytes.load(Ordering::Relaxed) + len > self.max_bytes {
            self.overflowed();
            return false;
        }
        match self.tx.try_send(frame) {
            Ok(()) => {
                self.queued_bytes.fetch_add(len, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflowed();
                false
            }
            // Already closed: nothing was refused for slowness.
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Queues a replayed frame once the queue is at most half full, waiting
    /// up to `deadline` for the writer to make room.
    pub async fn offer_replay(&self, frame: Utf8Bytes, deadline: Duration) -> Result<(), Stalled> {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            // Registered before the check, so a flush in between is not missed.
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.closing.is_cancelled() {
                return Err(Stalled);
            }
            let room = self.tx.capacity() * 2 > self.tx.max_capacity()
                && self.queued_bytes.load(Ordering::Relaxed) + frame.len() <= self.max_bytes / 2;
            if room {
                return if self.offer(frame) { Ok(()) } else { Err(Stalled) };
            }
            tokio::select! {
                _ = &mut drained => {}
                _ = self.closing.cancelled() => return Err(Stalled),
                _ = tokio::time::sleep_until(until) => return Err(Stalled),
            }
        }
    }

    /// Called by the writer once `bytes` queued bytes reached the socket.
    pub fn written(&self, bytes: usize) {
        self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.drained.notify_waiters();
    }

    /// Frames waiting in the queue.
    pub fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    pub fn close(&self, code: u16) {
        if !self.closing.is_cancelled() {
            self.close_code.store(code, Ordering::Relaxed);
            self.closing.cancel();
            if code == close::SLOW_CONSUMER {
                metrics::counter!(metric_names::WS_SLOW_CONSUMER_CLOSES).increment(1);
            }
        }
    }

    fn overflowed(&self) {
        metrics::counter!(metric_names::WS_BROADCAST_ERRORS, "reason" => "slow_consumer").increment(1);
        self.close(close::SLOW_CONSUMER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_replay_waits_for_room_and_gives_up_after_the_deadline() {
        let (tx, mut rx) = mpsc::channel(4);
        let handle = ConnHandle::new(tx, 1 << 20, 1);
        for _ in 0..2 {
            handle
                .offer_replay(Utf8Bytes::from_static("x"), Duration::from_millis(50))
                .await
                .unwrap();
        }
        // Half full: the next replayed frame waits, and no one drains.
        assert!(
            handle
                .offer_replay(Utf8Bytes::from_static("x"), Duration::from_millis(50))
                .await
                .is_err()
        );
        assert!(
            !handle.closing.is_cancelled(),
            "waiting is not a slow consumer by itself"
        );
        let waiter = {
            let handle = handle.clone();
            tokio::spawn(async move {
                handle
                    .offer_replay(Utf8Bytes::from_static("y"), Duration::from_secs(5))
                    .await
            })
        };
        tokio::task::yield_now().await;
        rx.recv().await;
        handle.written(1);
        assert!(waiter.await.unwrap().is_ok());
    }
}
