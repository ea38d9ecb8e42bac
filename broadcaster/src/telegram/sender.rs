//! One notification, from its `gad.notify.*` message to its acknowledgement:
//! claim the row, wait for the rate limiter, send, record the outcome, and
//! turn the outcome into an ack (done) or a nak with a delay (try later).
//! Every outcome is written to the row before the message is acknowledged.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{AckKind, Message};
use chrono::Utc;
use gad_shared::redis_conn::Redis;
use rand::Rng;
use sqlx::PgPool;
use teloxide::Bot;
use teloxide::prelude::*;
use teloxide::types::ParseMode;
use uuid::Uuid;

use super::api::{SendFailure, classify};
use super::limiter::{Limiter, Verdict};
use super::render::{Rendered, render};
use super::rows::{self, Claim};
use crate::settings::TelegramSection;

/// What `gad.notify.*` messages carry (written by the workers' relay).
#[derive(serde::Deserialize)]
struct NotifyMessage {
    notification_id: Uuid,
}

/// How a delivery ends for its message.
#[derive(Debug)]
enum Next {
    Ack,
    /// Nak with this delay: JetStream redelivers it then.
    Later(Duration),
}

pub struct Sender {
    pub db: PgPool,
    pub bot: Bot,
    pub limiter: Arc<Limiter>,
    pub redis: Redis,
    pub settings: TelegramSection,
    pub redis_timeout: Duration,
    /// Key prefix of the "already sent" markers (tenants share a Redis).
    pub key_prefix: String,
}

impl Sender {
    pub async fn deliver(&self, message: Message) {
        let id = match serde_json::from_slice::<NotifyMessage>(&message.payload) {
            Ok(m) => m.notification_id,
            Err(e) => {
                tracing::warn!(error = %e, "telegram delivery: undecodable message dropped");
                let _ = message.ack_with(AckKind::Term).await;
                return;
            }
        };
        let step = self.step(id).await;
        tracing::debug!(notification_id = %id, outcome = ?step, "telegram delivery");
        let ack = match step {
            Ok(Next::Ack) => AckKind::Ack,
            Ok(Next::Later(delay)) => AckKind::Nak(Some(delay)),
            Err(e) => {
                tracing::warn!(notification_id = %id, error = %e, "telegram delivery: database error; retrying");
                AckKind::Nak(Some(self.backoff(1)))
            }
        };
        if let Err(e) = message.ack_with(ack).await {
            // Redelivered after the ack wait; the row decides what happens then.
            tracing::warn!(notification_id = %id, error = %e, "telegram delivery: acknowledgement failed");
        }
    }

    async fn step(&self, id: Uuid) -> Result<Next, sqlx::Error> {
        let claimed = match rows::claim(&self.db, id, self.settings.ack_wait).await? {
            Claim::Go(c) => c,
            Claim::Done => return Ok(Next::Ack),
            Claim::Later(d) => return Ok(Next::Later(d)),
        };
        if let Some(message_id) = self.already_sent(id).await {
            rows::sent(&self.db, id, message_id).await?;
            return Ok(Next::Ack);
        }
        let Some(chat) = claimed.chat else {
            rows::failed(&self.db, id, "the usuario has no linked chat").await?;
            return Ok(Next::Ack);
        };
        let age = (Utc::now() - claimed.created_at).to_std().unwrap_or_default();
        if age >= self.settings.give_up_after {
            rows::failed(&self.db, id, "not delivered within telegram.give_up_after").await?;
            return Ok(Next::Ack);
        }
        let rendered = render(id, &claimed.payload);
        let mut html = true;
        loop {
            if let Some(wait) = self.take_slot(chat).await {
                rows::release(&self.db, id, wait).await?;
                return Ok(Next::Later(wait));
            }
            let failure = match self.send(chat, &rendered, html).await {
                Ok(message_id) => {
                    outcome("sent");
                    self.mark_sent(id, message_id).await;
                    rows::sent(&self.db, id, message_id).await?;
                    return Ok(Next::Ack);
                }
                Err(f) => f,
            };
            match failure {
                SendFailure::Parse(e) if html => {
                    tracing::warn!(notification_id = %id, error = %e, "telegram rejected our HTML; resending as plain text");
                    html = false;
                }
                SendFailure::RetryAfter(retry_after) => {
                    self.limiter.pause(chat, retry_after).await;
                    let delay = retry_after + self.jitter();
                    outcome("retried");
                    rows::retry_later(&self.db, id, "429 Too Many Requests", delay).await?;
                    return Ok(Next::Later(delay));
                }
                SendFailure::Unreachable(e) => {
                    tracing::info!(notification_id = %id, error = %e, "telegram chat unreachable; notification undeliverable");
                    outcome("undeliverable");
                    rows::undeliverable(&self.db, id, &e).await?;
                    return Ok(Next::Ack);
                }
                SendFailure::Transient(e) => {
                    tracing::debug!(notification_id = %id, error = %e, "telegram send failed; retrying later");
                    let delay = self.backoff(claimed.attempts.saturating_add(1).max(1) as u32);
                    if age + delay >= self.settings.give_up_after {
                        outcome("failed");
                        rows::failed(&self.db, id, &e).await?;
                        return Ok(Next::Ack);
                    }
                    outcome("retried");
                    rows::retry_later(&self.db, id, &e, delay).await?;
                    return Ok(Next::Later(delay));
                }
                SendFailure::Parse(e) | SendFailure::Permanent(e) => {
                    tracing::warn!(notification_id = %id, error = %e, "telegram refused the notification");
                    outcome("failed");
                    rows::failed(&self.db, id, &e).await?;
                    return Ok(Next::Ack);
                }
            }
        }
    }

    /// Waits for the limiter while the wait is short; a longer wait is
    /// returned so the message goes back to the stream instead of holding a
    /// permit that other chats could use.
    async fn take_slot(&self, chat: i64) -> Option<Duration> {
        loop {
            match self.limiter.try_acquire(chat).await {
                Verdict::Go => return None,
                Verdict::Wait(d) if d <= self.settings.per_chat_interval => tokio::time::sleep(d).await,
                Verdict::Wait(d) => return Some(d + self.jitter()),
            }
        }
    }

    async fn send(&self, chat: i64, r: &Rendered, html: bool) -> Result<i64, SendFailure> {
        let text = if html { &r.html } else { &r.plain };
        let mut request = self.bot.send_message(ChatId(chat), text.clone());
        if html {
            request = request.parse_mode(ParseMode::Html);
        }
        if let Some(keyboard) = &r.keyboard {
            request = request.reply_markup(keyboard.clone());
        }
        // Also bounds teloxide's own 10 s pause after a 5xx: a timed-out
        // call is retried like the 5xx it usually is.
        let failure = match tokio::time::timeout(self.settings.api_timeout, request.send()).await {
            Err(_) => SendFailure::Transient("no answer within telegram.api_timeout".into()),
            Ok(Err(e)) => classify(e),
            Ok(Ok(message)) => return Ok(i64::from(message.id.0)),
        };
        metrics::counter!(gad_shared::metric_names::TELEGRAM_API_ERRORS, "code" => failure.code()).increment(1);
        Err(failure)
    }

    fn sent_key(&self, id: Uuid) -> String {
        format!("{}gad:tg:sent:{id}", self.key_prefix)
    }

    /// Remembered in Redis before the row is written, so a send whose row
    /// update failed is not repeated when the message comes back.
    async fn mark_sent(&self, id: Uuid, message_id: i64) {
        let Some(mut conn) = self.redis.conn().await else {
            return;
        };
        let mut set = redis::cmd("SET");
        set.arg(self.sent_key(id)).arg(message_id).arg("EX").arg(2 * 24 * 3600);
        let _ = tokio::time::timeout(self.redis_timeout, set.query_async::<()>(&mut conn)).await;
    }

    async fn already_sent(&self, id: Uuid) -> Option<i64> {
        let mut conn = self.redis.conn().await?;
        let mut get = redis::cmd("GET");
        get.arg(self.sent_key(id));
        tokio::time::timeout(self.redis_timeout, get.query_async::<Option<i64>>(&mut conn))
            .await
            .ok()?
            .ok()?
    }

    fn jitter(&self) -> Duration {
        let max = self.settings.retry_jitter.as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(0..=max))
    }

    /// Exponential with full jitter: uniform in `[0, min(cap, base·2^(n-1))]`,
    /// at least 100 ms so a nak never turns into a busy loop.
    fn backoff(&self, attempt: u32) -> Duration {
        let s = &self.settings;
        let ceiling = s
            .backoff_base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(s.backoff_cap);
        let ms = ceiling.as_millis().min(u64::MAX as u128) as u64;
        Duration::from_millis(rand::rng().random_range(0..=ms).max(100))
    }
}

/// What became of one delivery attempt (`sent`, `retried`, `undeliverable`,
/// `failed`): with `telegram_api_errors_total`, the bot's delivery figures.
fn outcome(outcome: &'static str) {
    metrics::counter!(gad_shared::metric_names::TELEGRAM_NOTIFICATIONS, "outcome" => outcome).increment(1);
}
