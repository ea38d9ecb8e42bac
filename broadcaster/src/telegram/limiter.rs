//! The outbound rate limit of §9: at most one message per `per_chat_interval`
//! to a chat and `per_bot_per_second` for the whole bot, shared by every
//! replica through Redis. Each limit is a GCRA with no burst: Redis keeps the
//! earliest time the next message may go (its "theoretical arrival time"),
//! and one Lua script checks both limits and takes both slots atomically, on
//! Redis' clock, so replicas with skewed clocks still agree.
//!
//! With Redis unreachable each replica limits itself in memory, to
//! `per_bot_per_second / replicas`, so the cluster stays under the cap.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use gad_shared::redis_conn::Redis;
use tokio::time::Instant;

/// Checks both limits; takes both slots only when both are free. Returns
/// `{chat_wait_ms, bot_wait_ms}`, both 0 when the message may go now.
const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local chat = tonumber(redis.call('GET', KEYS[1]) or '0')
local bot = tonumber(redis.call('GET', KEYS[2]) or '0')
if chat > now or bot > now then
  return {math.max(chat - now, 0), math.max(bot - now, 0)}
end
local chat_ms = tonumber(ARGV[1])
local bot_ms = tonumber(ARGV[2])
redis.call('SET', KEYS[1], now + chat_ms, 'PX', chat_ms + 1000)
redis.call('SET', KEYS[2], now + bot_ms, 'PX', bot_ms + 1000)
return {0, 0}
";

/// Pushes both slots to at least `now + ARGV[1]` ms (a 429's `retry_after`).
const PAUSE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
for _, key in ipairs(KEYS) do
  local cur = tonumber(redis.call('GET', key) or '0')
  if until_ms > cur then
    redis.call('SET', key, until_ms, 'PX', until_ms - now + 1000)
  end
end
return 0
";

/// What the limiter decided for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Both slots taken: send now.
    Go,
    /// Not yet: try again after this long (the longer of the two waits).
    Wait(Duration),
}

pub struct Limiter {
    redis: Redis,
    command_timeout: Duration,
    prefix: String,
    chat_interval: Duration,
    bot_interval: Duration,
    acquire: redis::Script,
    pause: redis::Script,
    local: Mutex<Local>,
    local_bot_interval: Duration,
}

impl Limiter {
    /// `prefix` keeps tenants (and tests) sharing a Redis apart.
    pub fn new(
        redis: Redis,
        command_timeout: Duration,
        prefix: &str,
        chat_interval: Duration,
        per_bot_per_second: u32,
        replicas: u32,
    ) -> Self {
        let per_second = per_bot_per_second.max(1);
        let local_per_second = (per_second / replicas.max(1)).max(1);
        Self {
            redis,
            command_timeout,
            prefix: format!("{prefix}gad:tg:rate:"),
            chat_interval,
            bot_interval: Duration::from_secs(1) / per_second,
            acquire: redis::Script::new(ACQUIRE),
            pause: redis::Script::new(PAUSE),
            local: Mutex::new(Local::default()),
            local_bot_interval: Duration::from_secs(1) / local_per_second,
        }
    }

    /// Takes the slots for one message to `chat`, or says how long to wait.
    pub async fn try_acquire(&self, chat: i64) -> Verdict {
        match self.try_redis(chat).await {
            Some(v) => v,
            None => self.try_local(chat),
        }
    }

    /// Holds every send to `chat`, and the whole bot, for `retry_after`.
    pub async fn pause(&self, chat: i64, retry_after: Duration) {
        let mut invocation = self.pause.key(self.chat_key(chat));
        invocation.key(self.bot_key()).arg(retry_after.as_millis() as u64);
        let paused = match self.redis.conn().await {
            Some(mut conn) => tokio::time::timeout(self.command_timeout, invocation.invoke_async::<i64>(&mut conn))
                .await
                .is_ok_and(|r| r.is_ok()),
            None => false,
        };
        if !paused {
            let until = Instant::now() + retry_after;
            let mut local = self.lock_local();
            local.bot = local.bot.max(until);
            let entry = local.chats.entry(chat).or_insert(until);
            *entry = (*entry).max(until);
        }
    }

    async fn try_redis(&self, chat: i64) -> Option<Verdict> {
        let mut conn = self.redis.conn().await?;
        let mut invocation = self.acquire.key(self.chat_key(chat));
        invocation
            .key(self.bot_key())
            .arg(self.chat_interval.as_millis() as u64)
            .arg(self.bot_interval.as_millis().max(1) as u64);
        let waits: Vec<i64> = match tokio::time::timeout(self.command_timeout, invocation.invoke_async(&mut conn)).await
        {
            Ok(Ok(w)) => w,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "telegram limiter: redis failed; limiting this replica alone");
                return None;
            }
            Err(_) => {
                tracing::warn!("telegram limiter: redis timed out; limiting this replica alone");
                return None;
            }
        };
        let wait = waits.iter().copied().max().unwrap_or(0).max(0) as u64;
        Some(if wait == 0 {
            Verdict::Go
        } else {
            Verdict::Wait(Duration::from_millis(wait))
        })
    }

    fn try_local(&self, chat: i64) -> Verdict {
        let now = Instant::now();
        let mut local = self.lock_local();
        let chat_at = local.chats.get(&chat).copied().unwrap_or(now);
        let wait = chat_at.max(local.bot).saturating_duration_since(now);
        if !wait.is_zero() {
            return Verdict::Wait(wait);
        }
        local.bot = now + self.local_bot_interval;
        // Entries in the past limit nothing; drop them before the map grows.
        if local.chats.len() > 10_000 {
            local.chats.retain(|_, at| *at > now);
        }
        local.chats.insert(chat, now + self.chat_interval);
        Verdict::Go
    }

    fn lock_local(&self) -> std::sync::MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn chat_key(&self, chat: i64) -> String {
        format!("{}chat:{chat}", self.prefix)
    }

    fn bot_key(&self) -> String {
        format!("{}bot", self.prefix)
    }
}

/// The in-memory fallback: earliest next send per chat and for the bot.
struct Local {
    chats: HashMap<i64, Instant>,
    bot: Instant,
}

impl Default for Local {
    fn default() -> Self {
        Self {
            chats: HashMap::new(),
            bot: Instant::now(),
        }
    }
}
