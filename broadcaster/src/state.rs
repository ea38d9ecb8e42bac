//! What the broadcaster's handlers can reach.

use std::sync::Arc;

use async_nats::jetstream::{self, kv};
use gad_shared::auth::TokenVerifier;
use gad_shared::topology::Topology;
use governor::DefaultDirectRateLimiter;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::hub::Hub;
use crate::settings::BroadcasterSettings;

/// Every connection task holds one: a pointer, so 10,000 idle connections
/// do not each carry a copy of the NATS handles, key-value stores and
/// verifier (kilobytes apiece).
pub type AppState = Arc<Shared>;

pub struct Shared {
    pub settings: Arc<BroadcasterSettings>,
    pub hub: Hub,
    pub verifier: TokenVerifier,
    pub nats: async_nats::Client,
    /// Connected lazily: only nivel-1 subscriptions to an own task or unit
    /// (and Telegram) read it, so WebSocket delivery does not depend on it.
    pub db: sqlx::PgPool,
    /// Current job statuses, for the frame sent on subscribing to `jobs.{id}`.
    pub job_status: kv::Store,
    /// Reading `GAD_EVENTS` for resumes from further back than the history,
    /// and publishing the test broadcast.
    pub js: jetstream::Context,
    pub topology: Topology,
    /// Connection tasks, so shutdown can wait for their closes.
    pub connections: TaskTracker,
    pub draining: CancellationToken,
    /// This node's rate of new connections (§8 capacity): per node, not
    /// shared, because what it protects is this node's CPU.
    pub new_connections: DefaultDirectRateLimiter,
}
