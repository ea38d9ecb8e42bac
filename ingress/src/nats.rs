//! Ingress's view of NATS. Every handle is made lazily and retried in the
//! background, because ingress must start, and answer 503, while NATS is down.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use gad_shared::auth::Revocations;
use gad_shared::topology::Topology;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Clone)]
pub struct Nats {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub topology: Topology,
    status: Arc<OnceCell<kv::Store>>,
    revocation: Arc<OnceCell<kv::Store>>,
    idempotency: Arc<OnceCell<kv::Store>>,
    revocation_loaded: Arc<OnceCell<()>>,
}

impl Nats {
    pub fn new(client: async_nats::Client, js: jetstream::Context, topology: Topology) -> Self {
        Self {
            client,
            js,
            topology,
            status: Default::default(),
            revocation: Default::default(),
            idempotency: Default::default(),
            revocation_loaded: Default::default(),
        }
    }

    /// The job-status bucket, once NATS has been reached.
    pub fn status_bucket(&self) -> Option<&kv::Store> {
        self.status.get()
    }

    /// The revocation bucket (logout denylist, `tokens_validos_desde` bumps).
    pub fn revocation_bucket(&self) -> Option<&kv::Store> {
        self.revocation.get()
    }

    /// The 24 h `Idempotency-Key` bucket.
    pub fn idempotency_bucket(&self) -> Option<&kv::Store> {
        self.idempotency.get()
    }

    /// True once revocations are mirrored: before that no token can be trusted.
    pub fn revocations_loaded(&self) -> bool {
        self.revocation_loaded.initialized()
    }

    /// True when NATS is connected and every handle is bound.
    pub fn ready(&self) -> bool {
        self.status.initialized()
            && self.revocation_loaded.initialized()
            && self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Creates the topology and binds the buckets, retrying until it succeeds
    /// or `cancel` fires.
    pub fn bootstrap(
        &self,
        revocations: Revocations,
        token_ttl: Duration,
        cancel: CancellationToken,
        tracker: &TaskTracker,
    ) {
        let me = self.clone();
        let tracker2 = tracker.clone();
        tracker.spawn(async move {
            let mut delay = Duration::from_millis(100);
            loop {
                // An attempt in flight must not hold up shutdown while NATS is down.
                let attempt = tokio::select! {
                    _ = cancel.cancelled() => break,
                    r = me.try_bootstrap(&revocations, token_ttl, &cancel, &tracker2) => r,
                };
                match attempt {
                    Ok(()) => break,
                    Err(e) => tracing::warn!(error = %e, "NATS not ready; retrying"),
                }
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        });
    }

    async fn try_bootstrap(
        &self,
        revocations: &Revocations,
        token_ttl: Duration,
        cancel: &CancellationToken,
        tracker: &TaskTracker,
    ) -> Result<(), async_nats::Error> {
        self.topology.ensure(&self.js, token_ttl).await?;
        let status = self.js.get_key_value(self.topology.job_status_bucket()).await?;
        let _ = self.status.set(status);
        let idempotency = self.js.get_key_value(self.topology.idempotency_bucket()).await?;
        let _ = self.idempotency.set(idempotency);
        if !self.revocation_loaded.initialized() {
            let store = self.js.get_key_value(self.topology.revocation_bucket()).await?;
            revocations.follow(store.clone(), cancel.clone(), tracker).await?;
            let _ = self.revocation.set(store);
            let _ = self.revocation_loaded.set(());
        }
        Ok(())
    }
}
