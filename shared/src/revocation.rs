//! The in-memory mirror of the revocation bucket (`GAD_REVOCATION`, §6.2):
//! keys `u.<usuario id>` hold a [`UserRevocation`], keys `j.<jti>` mark a
//! logged-out token. Tokens are checked against the mirror alone, so it must
//! be complete: it is loaded in full before anyone trusts it, followed by a
//! watch, and reconciled with a fresh full read periodically and whenever
//! the watch ends or fails, so an update the watch missed (a NATS restart,
//! a deleted consumer) is picked up within one period.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often the mirror is compared with the bucket even though the watch
/// looks healthy; bounds how long a silently missed revocation can last.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(30);
/// A full read that takes longer than this is abandoned and retried.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Values fetched at once during a full read.
const READ_CONCURRENCY: usize = 16;

/// A user's revocation entry: tokens issued before `valid_since` are refused.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct UserRevocation {
    pub valid_since: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    #[error("revocation watch: {0}")]
    Watch(#[from] kv::WatchError),
    #[error("reading the revocation bucket: {0}")]
    Read(String),
    #[error("reading the revocation bucket took longer than {0:?}")]
    Timeout(Duration),
}

/// Each entry remembers when it was last applied, so a reconciliation can
/// drop what the bucket no longer holds without dropping what the watch
/// applied while the full read was under way.
#[derive(Default)]
struct State {
    users: HashMap<i64, (i64, Instant)>,
    jtis: HashMap<String, Instant>,
}

impl State {
    fn apply(&mut self, key: &str, value: Option<&[u8]>, now: Instant) {
        if let Some(id) = key.strip_prefix("u.").and_then(|id| id.parse::<i64>().ok()) {
            match value.and_then(|v| serde_json::from_slice::<UserRevocation>(v).ok()) {
                Some(r) => {
                    self.users.insert(id, (r.valid_since, now));
                }
                None => {
                    self.users.remove(&id);
                }
            }
        } else if let Some(jti) = key.strip_prefix("j.") {
            if value.is_some() {
                self.jtis.insert(jti.to_string(), now);
            } else {
                self.jtis.remove(jti);
            }
        }
    }
}

#[derive(Clone, Default)]
pub struct Revocations {
    state: Arc<RwLock<State>>,
}

impl Revocations {
    pub fn user_key(user_id: i64) -> String {
        format!("u.{user_id}")
    }
    pub fn jti_key(jti: &str) -> String {
        format!("j.{jti}")
    }

    pub fn is_revoked(&self, user_id: i64, iat: i64, jti: &str) -> bool {
        // A poisoned lock fails closed.
        let Ok(state) = self.state.read() else { return true };
        state.users.get(&user_id).is_some_and(|(since, _)| iat < *since) || state.jtis.contains_key(jti)
    }

    pub(crate) fn apply(&self, key: &str, value: Option<&[u8]>) {
        let Ok(mut state) = self.state.write() else { return };
        state.apply(key, value, Instant::now());
    }

    fn apply_entry(&self, entry: &kv::Entry) {
        match entry.operation {
            kv::Operation::Put => self.apply(&entry.key, Some(&entry.value)),
            kv::Operation::Delete | kv::Operation::Purge => self.apply(&entry.key, None),
        }
    }

    /// Makes the mirror equal to `snapshot`, read from the bucket after
    /// `started`. Entries applied since then came from the watch and are at
    /// least as new as the read, so they are kept; a user's cut-off only
    /// moves forward, so the later of the two wins.
    fn reconcile(&self, snapshot: Vec<(String, bytes::Bytes)>, started: Instant) {
        let mut fresh = State::default();
        let now = Instant::now();
        for (key, value) in &snapshot {
            fresh.apply(key, Some(value), now);
        }
        let Ok(mut state) = self.state.write() else { return };
        let mut users = fresh.users;
        for (id, (since, at)) in state.users.drain() {
            if at >= started {
                let kept = users.entry(id).or_insert((since, at));
                kept.0 = kept.0.max(since);
            }
        }
        let mut jtis = fresh.jtis;
        for (jti, at) in state.jtis.drain() {
            if at >= started {
                jtis.insert(jti, at);
            }
        }
        *state = State { users, jtis };
    }

    /// Reads every key and value of the bucket once.
    async fn read_all(store: &kv::Store) -> Result<Vec<(String, bytes::Bytes)>, RevocationError> {
        let read = async {
            let keys: Vec<String> = store
                .keys()
                .await
                .map_err(|e| RevocationError::Read(e.to_string()))?
                .try_collect()
                .await
                .map_err(|e| RevocationError::Read(e.to_string()))?;
            futures::stream::iter(keys)
                .map(|key| async move {
                    let value = store
                        .get(&key)
                        .await
                        .map_err(|e| RevocationError::Read(e.to_string()))?;
                    Ok::<_, RevocationError>(value.map(|v| (key, v)))
                })
                .buffer_unordered(READ_CONCURRENCY)
                .try_filter_map(|entry| async move { Ok(entry) })
                .try_collect()
                .await
        };
        tokio::time::timeout(READ_TIMEOUT, read)
            .await
            .map_err(|_| RevocationError::Timeout(READ_TIMEOUT))?
    }

    /// One full read applied to the mirror.
    pub async fn reload(&self, store: &kv::Store) -> Result<(), RevocationError> {
        let started = Instant::now();
        let snapshot = Self::read_all(store).await?;
        self.reconcile(snapshot, started);
        Ok(())
    }

    /// Loads the whole bucket, then keeps the mirror current until `cancel`
    /// fires. Returns once the current contents are loaded (an error means
    /// they were not, and nothing may be trusted yet), so no token revoked
    /// before start, e.g. while this process was down, slips through.
    pub async fn follow(
        &self,
        store: kv::Store,
        cancel: CancellationToken,
        tracker: &TaskTracker,
    ) -> Result<(), RevocationError> {
        // The watch starts first: whatever changes during the full read is
        // then seen by one or the other.
        let watch = store.watch(">").await?;
        self.reload(&store).await?;
        let me = self.clone();
        tracker.spawn(async move { me.keep_current(store, watch, cancel).await });
        Ok(())
    }

    async fn keep_current(&self, store: kv::Store, watch: kv::Watch, cancel: CancellationToken) {
        let mut watch = Some(watch);
        let mut tick = tokio::time::interval(RECONCILE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            let next = async {
                match watch.as_mut() {
                    Some(w) => w.next().await,
                    None => std::future::pending().await,
                }
            };
            let watch_broken = tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => false,
                next = next => match next {
                    Some(Ok(entry)) => {
                        self.apply_entry(&entry);
                        continue;
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "revocation watch failed; restarting it");
                        true
                    }
                    None => {
                        tracing::warn!("revocation watch ended; restarting it");
                        true
                    }
                },
            };
            if watch_broken || watch.is_none() {
                watch = store
                    .watch(">")
                    .await
                    .inspect_err(|e| tracing::warn!(error = %e, "revocation watch not restarted; will retry"))
                    .ok();
            }
            if let Err(e) = self.reload(&store).await {
                tracing::warn!(error = %e, "revocation mirror not reconciled; will retry");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(since: i64) -> bytes::Bytes {
        bytes::Bytes::from(format!("{{\"valid_since\":{since}}}"))
    }

    #[test]
    fn a_reconciliation_drops_what_the_bucket_lost_but_keeps_newer_watch_updates() {
        let rev = Revocations::default();
        rev.apply("j.gone", Some(b"1"));
        rev.apply("u.1", Some(&user(100)));
        let started = Instant::now();
        // Applied by the watch while the full read was under way.
        rev.apply("j.new", Some(b"1"));
        rev.apply("u.2", Some(&user(300)));
        rev.reconcile(
            vec![
                ("u.1".into(), user(100)),
                ("u.2".into(), user(200)),
                ("j.missed".into(), bytes::Bytes::from_static(b"1")),
            ],
            started,
        );
        assert!(!rev.is_revoked(9, 0, "gone"));
        assert!(rev.is_revoked(9, 0, "new"));
        assert!(rev.is_revoked(9, 0, "missed"));
        assert!(rev.is_revoked(1, 99, "x") && !rev.is_revoked(1, 100, "x"));
        // The later cut-off wins.
        assert!(rev.is_revoked(2, 250, "x"));
    }
}
