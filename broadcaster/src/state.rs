//! What the broadcaster's handlers can reach.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use async_nats::jetstream::kv;
use gad_shared::auth::TokenVerifier;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::hub::Hub;
use crate::settings::BroadcasterSettings;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<BroadcasterSettings>,
    pub hub: Hub,
    pub verifier: TokenVerifier,
    pub nats: async_nats::Client,
    /// Connected lazily: only nivel-1 subscriptions to an own task or unit
    /// (and Telegram) read it, so WebSocket delivery does not depend on it.
    pub db: sqlx::PgPool,
    /// Current job statuses, for the frame sent on subscribing to `jobs.{id}`.
    pub job_status: kv::Store,
    /// Stream sequence of the newest event seen: the `seq` a subscriber may resume from.
    pub head_seq: Arc<AtomicU64>,
    /// Connection tasks, so shutdown can wait for their closes.
    pub connections: TaskTracker,
    pub draining: CancellationToken,
}
