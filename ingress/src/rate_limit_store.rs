//! Where rate-limit state lives: Redis, so every ingress replica draws on one
//! budget per key (GCRA, the algorithm governor implements, as one Lua script
//! so the read-modify-write is atomic); while Redis is unreachable each
//! process falls back to its own governor limiter, which is looser across
//! replicas but never lets a client go unlimited.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gad_shared::redis_conn::Redis;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

/// What the limiter decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the budget is whole again.
    pub reset_s: u64,
    /// Seconds until a refused request may be retried (0 when allowed).
    pub retry_after_s: u64,
}

/// GCRA over one minute: `limit` requests at once, then one per minute/limit.
/// Returns {allowed, remaining, reset_s, retry_after_s}.
const GCRA: &str = r"
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = period / limit
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - period
if now < allow_at then
  return {0, 0, math.ceil((tat - now) / 1000), math.ceil((allow_at - now) / 1000)}
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now))
return {1, math.floor((now + period - new_tat) / interval), math.ceil((new_tat - now) / 1000), 0}
";

type Local = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

pub struct Store {
    redis: Redis,
    script: redis::Script,
    command_timeout: Duration,
    /// After a Redis failure, skip Redis until this Unix time (ms): asking a
    /// dead server on every request would add its timeout to each one.
    redis_down_until: AtomicU64,
    retry_redis_after: Duration,
    warned: AtomicBool,
    locals: Vec<(u32, Arc<Local>)>,
    checks: AtomicU64,
}

impl Store {
    pub fn new(redis: Redis, command_timeout: Duration, retry_redis_after: Duration) -> Self {
        Self {
            redis,
            script: redis::Script::new(GCRA),
            command_timeout,
            redis_down_until: AtomicU64::new(0),
            retry_redis_after,
            warned: AtomicBool::new(false),
            locals: Vec::new(),
            checks: AtomicU64::new(0),
        }
    }

    /// One more request under `key` against `limit` per minute.
    pub async fn check(&self, key: &str, limit: NonZeroU32) -> Decision {
        if now_ms() >= self.redis_down_until.load(Ordering::Relaxed) {
            match self.check_redis(key, limit).await {
                Ok(d) => {
                    if self.warned.swap(false, Ordering::Relaxed) {
                        tracing::info!("rate limits shared through Redis again");
                    }
                    return d;
                }
                Err(e) => {
                    if !self.warned.swap(true, Ordering::Relaxed) {
                        tracing::warn!(error = %e, "Redis unreachable: rate limits are per process until it is back");
                    }
                    let until = now_ms() + self.retry_redis_after.as_millis() as u64;
                    self.redis_down_until.store(until, Ordering::Relaxed);
                }
            }
        }
        self.check_local(key, limit)
    }

    async fn check_redis(&self, key: &str, limit: NonZeroU32) -> Result<Decision, String> {
        let mut conn = self.redis.conn().await.ok_or("unreachable")?;
        let mut call = self.script.key(key);
        call.arg(limit.get()).arg(60_000u64);
        let answer: Vec<i64> = tokio::time::timeout(self.command_timeout, call.invoke_async(&mut conn))
            .await
            .map_err(|_| "timeout".to_string())?
            .map_err(|e| e.to_string())?;
        let [allowed, remaining, reset_s, retry_after_s] = answer[..] else {
            return Err(format!("unexpected script answer {answer:?}"));
        };
        Ok(Decision {
            allowed: allowed == 1,
            limit: limit.get(),
            remaining: remaining.clamp(0, i64::from(limit.get())) as u32,
            reset_s: reset_s.max(0) as u64,
            retry_after_s: retry_after_s.max(0) as u64,
        })
    }

    fn check_local(&self, key: &str, limit: NonZeroU32) -> Decision {
        let Some(local) = self.locals.iter().find(|(l, _)| *l == limit.get()).map(|(_, r)| r) else {
            // Every limit in use is registered up front; an unknown one admits.
            return Decision {
                allowed: true,
                limit: limit.get(),
                remaining: limit.get(),
                reset_s: 0,
                retry_after_s: 0,
            };
        };
        // Keys seen during an outage would otherwise be kept for ever.
        if self.checks.fetch_add(1, Ordering::Relaxed).is_multiple_of(4096) {
            local.retain_recent();
        }
        let per_request_s = 60.0 / f64::from(limit.get());
        match local.check_key(&key.to_string()) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                Decision {
                    allowed: true,
                    limit: limit.get(),
                    remaining,
                    reset_s: (f64::from(limit.get() - remaining.min(limit.get())) * per_request_s).ceil() as u64,
                    retry_after_s: 0,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Decision {
                    allowed: false,
                    limit: limit.get(),
                    remaining: 0,
                    reset_s: 60,
                    retry_after_s: wait.as_secs_f64().ceil().max(1.0) as u64,
                }
            }
        }
    }

    /// Registers a per-process fallback limiter for `limit` per minute.
    pub fn with_limit(mut self, limit: NonZeroU32) -> Self {
        if !self.locals.iter().any(|(l, _)| *l == limit.get()) {
            let local = RateLimiter::keyed(Quota::per_minute(limit)).with_middleware::<StateInformationMiddleware>();
            self.locals.push((limit.get(), Arc::new(local)));
        }
        self
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
