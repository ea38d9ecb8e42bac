//! Rate limits (§6.4): per route group, keyed by the usuario when the
//! request carries a valid token and by the client address otherwise; shared
//! across replicas (see `rate_limit_store`). `/health*` and `/metrics` are
//! exempt. Over the limit: 429 `rate_limited` with `Retry-After` and the
//! `X-RateLimit-*` headers, which allowed answers carry too.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gad_shared::http_error::ApiError;
use gad_shared::redis_conn::Redis;
use serde::Deserialize;

use crate::rate_limit_store::{Decision, Store};
use crate::state::AppState;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    /// `RATE_LIMIT_ENABLED`.
    pub enabled: bool,
    /// `POST /api/v1/auth/login`, per client address and per username.
    pub login_per_minute: NonZeroU32,
    /// Every other non-GET request, per usuario (or address).
    pub writes_per_minute: NonZeroU32,
    /// GET requests, per usuario (or address).
    pub reads_per_minute: NonZeroU32,
    /// Redis key prefix; deployments sharing a Redis keep theirs apart.
    pub key_prefix: String,
    /// After a Redis failure, per-process limits for this long before Redis is asked again.
    #[serde(with = "humantime_serde")]
    pub redis_retry_after: Duration,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            login_per_minute: NonZeroU32::MIN.saturating_add(9),
            writes_per_minute: NonZeroU32::MIN.saturating_add(119),
            reads_per_minute: NonZeroU32::MIN.saturating_add(599),
            key_prefix: "gad:rl:".into(),
            redis_retry_after: Duration::from_secs(5),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    Login,
    LoginUser,
    Writes,
    Reads,
}

impl Group {
    fn name(self) -> &'static str {
        match self {
            Group::Login => "login",
            Group::LoginUser => "login_user",
            Group::Writes => "writes",
            Group::Reads => "reads",
        }
    }
}

#[derive(Clone)]
pub struct RateLimits {
    store: Arc<Store>,
    settings: Arc<RateLimitSettings>,
}

impl RateLimits {
    /// `None` when switched off.
    pub fn new(settings: &RateLimitSettings, redis: Redis, command_timeout: Duration) -> Option<Self> {
        if !settings.enabled {
            return None;
        }
        let store = Store::new(redis, command_timeout, settings.redis_retry_after)
            .with_limit(settings.login_per_minute)
            .with_limit(settings.writes_per_minute)
            .with_limit(settings.reads_per_minute);
        Some(Self {
            store: Arc::new(store),
            settings: Arc::new(settings.clone()),
        })
    }

    pub async fn check(&self, group: Group, key: &str) -> Decision {
        let limit = match group {
            Group::Login | Group::LoginUser => self.settings.login_per_minute,
            Group::Writes => self.settings.writes_per_minute,
            Group::Reads => self.settings.reads_per_minute,
        };
        let key = format!("{}{}:{key}", self.settings.key_prefix, group.name());
        let decision = self.store.check(&key, limit).await;
        if !decision.allowed {
            metrics::counter!(gad_shared::metric_names::HTTP_RATE_LIMITED, "group" => group.name()).increment(1);
        }
        decision
    }
}

/// The 429 error for a refused decision (without the `X-RateLimit-*` headers).
pub fn refused_error(decision: Decision) -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many requests")
        .retry_after(decision.retry_after_s.max(1))
}

/// The 429 answer for a refused decision.
pub fn refused(decision: Decision) -> Response {
    let mut response = refused_error(decision).into_response();
    set_headers(response.headers_mut(), decision);
    response
}

fn set_headers(headers: &mut HeaderMap, d: Decision) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(d.limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(d.remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(d.reset_s));
}

pub async fn layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(limits) = state.rate_limits.as_ref() else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    // Telegram's webhook comes from Telegram's few addresses for every
    // user at once; it is authenticated by its secret instead.
    if path.starts_with("/health") || path == "/metrics" || path == crate::routes::telegram_webhook::PATH {
        return next.run(req).await;
    }
    let group = if path == "/api/v1/auth/login" {
        Group::Login
    } else if req.method() == Method::GET || req.method() == Method::HEAD {
        Group::Reads
    } else {
        Group::Writes
    };
    let caller = match group {
        Group::Login => None,
        _ => verified_caller(&state, req.headers()),
    };
    let key = caller
        .as_ref()
        .map(|c| format!("u:{}", c.user_id))
        .or_else(|| crate::client::current().and_then(|c| c.ip).map(|ip| format!("ip:{ip}")))
        .unwrap_or_else(|| "ip:unknown".into());
    if let Some(caller) = caller {
        // The handler's extractor takes it from here instead of verifying again.
        req.extensions_mut().insert(crate::caller::Verified(caller));
    }
    let decision = limits.check(group, &key).await;
    if !decision.allowed {
        return refused(decision);
    }
    let mut response = next.run(req).await;
    set_headers(response.headers_mut(), decision);
    response
}

/// The usuario of a valid bearer token; an invalid one counts as anonymous
/// (the handler then answers 401), so forged tokens cannot spend someone
/// else's budget.
fn verified_caller(state: &AppState, headers: &HeaderMap) -> Option<gad_shared::auth::Caller> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    state.verifier.verify(token.trim()).ok()
}
