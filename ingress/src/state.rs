//! What every handler can reach.

use std::sync::Arc;

use gad_shared::auth::{TokenIssuer, TokenVerifier};
use gad_shared::redis_conn::Redis;
use sqlx::PgPool;

use crate::nats::Nats;
use crate::settings::IngressSettings;
use crate::waiters::Waiters;

/// Cloned for every request by axum's extractors: one reference count, not
/// a dozen (the clone/drop of the fields showed up in the accept path's profile).
pub type AppState = Arc<Shared>;

pub struct Shared {
    pub settings: Arc<IngressSettings>,
    pub nats: Nats,
    /// Where jobs are published (JetStream or RabbitMQ, `queue.backend`).
    pub publisher: gad_shared::queue::Publisher,
    pub verifier: TokenVerifier,
    pub issuer: TokenIssuer,
    pub waiters: Waiters,
    /// Direct reads only; a soft dependency (lazy, never needed to accept work).
    pub db: PgPool,
    pub redis: Redis,
    pub draining: tokio_util::sync::CancellationToken,
    /// Calls to the broadcaster's internal endpoints (`/ws/stats`).
    pub http: reqwest::Client,
    /// `None` when rate limits are switched off.
    pub rate_limits: Option<crate::rate_limit::RateLimits>,
    pub admission: crate::admission::Admission,
}
