//! Requests waiting for a job's outcome (`Prefer: wait=N`). One core-NATS
//! subscription per process sees every update of the job-status bucket and
//! wakes the matching waiters, so waiting costs no consumer per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use gad_shared::envelope;
use gad_shared::job::JobRecord;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

#[derive(Clone)]
pub struct Waiters {
    inner: Arc<Mutex<HashMap<Uuid, Vec<oneshot::Sender<JobRecord>>>>>,
    /// Bound on waiting requests: past it a request answers 202 at once.
    capacity: usize,
}

/// Removes its registration when dropped (timeout, client gone).
pub struct Waiter {
    job_id: Uuid,
    rx: oneshot::Receiver<JobRecord>,
    waiters: Waiters,
}

impl Waiter {
    pub async fn wait(mut self, timeout: std::time::Duration) -> Option<JobRecord> {
        tokio::time::timeout(timeout, &mut self.rx)
            .await
            .ok()
            .and_then(Result::ok)
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if let Ok(mut map) = self.waiters.inner.lock()
            && let Some(list) = map.get_mut(&self.job_id)
        {
            list.retain(|tx| !tx.is_closed());
            if list.is_empty() {
                map.remove(&self.job_id);
            }
        }
    }
}

impl Waiters {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Default::default(),
            capacity,
        }
    }

    /// Registers interest in `job_id`'s terminal status; `None` when full.
    pub fn register(&self, job_id: Uuid) -> Option<Waiter> {
        let mut map = self.inner.lock().ok()?;
        if map.len() >= self.capacity {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        map.entry(job_id).or_default().push(tx);
        Some(Waiter {
            job_id,
            rx,
            waiters: self.clone(),
        })
    }

    /// Whether a request waits for the job named by a `$KV.<bucket>.<job_id>` subject.
    fn is_awaited(&self, subject: &str) -> bool {
        let Some(id) = subject.rsplit('.').next().and_then(|k| Uuid::parse_str(k).ok()) else {
            return false;
        };
        self.inner.lock().map(|m| m.contains_key(&id)).unwrap_or(false)
    }

    fn complete(&self, record: JobRecord) {
        let senders = self.inner.lock().ok().and_then(|mut m| m.remove(&record.job_id));
        for tx in senders.into_iter().flatten() {
            let _ = tx.send(record.clone());
        }
    }

    /// Follows the status bucket's subject until `cancel` fires.
    pub fn follow(
        &self,
        client: async_nats::Client,
        subject: String,
        cancel: CancellationToken,
        tracker: &TaskTracker,
    ) {
        let me = self.clone();
        tracker.spawn(async move {
            let mut sub = match client.subscribe(subject).await {
                Ok(sub) => sub,
                Err(e) => {
                    tracing::error!(error = %e, "cannot follow job statuses; waits will time out to 202");
                    return;
                }
            };
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    msg = sub.next() => {
                        let Some(msg) = msg else { break };
                        // Most updates concern jobs nobody here waits for: skip
                        // them before paying for the decode.
                        if !me.is_awaited(&msg.subject) {
                            continue;
                        }
                        match envelope::decode::<JobRecord>(&msg.payload, None) {
                            Ok(record) if record.status.is_terminal() => me.complete(record),
                            Ok(_) => {}
                            // Deletes and purges carry no payload.
                            Err(_) => {}
                        }
                    }
                }
            }
        });
    }
}
