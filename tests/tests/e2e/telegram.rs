//! Telegram (domain.md §9) against the fake Bot API: notification delivery
//! (rate limits, 429/5xx/403, idempotency) and the bot.

mod bot;
mod delivery;
mod storm;
mod support;
