//! What every handler can reach.

use std::sync::Arc;

use gad_shared::auth::{TokenIssuer, TokenVerifier};
use gad_shared::redis_conn::Redis;
use sqlx::PgPool;

use crate::nats::Nats;
use crate::settings::IngressSettings;
use crate::waiters::Waiters;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<IngressSettings>,
    pub nats: Nats,
    pub verifier: TokenVerifier,
    pub issuer: TokenIssuer,
    pub waiters: Waiters,
    /// Direct reads only; a soft dependency (lazy, never needed to accept work).
    pub db: PgPool,
    pub redis: Redis,
    pub draining: tokio_util::sync::CancellationToken,
}
