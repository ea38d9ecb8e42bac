//! Telegram (domain.md §9) against the fake Bot API: notification delivery
//! (rate limits, 429/5xx/403, idempotency) and the bot: its commands,
//! locations, and updates by long polling or by webhook.

mod bot;
mod commands;
mod delivery;
mod location;
mod storm;
mod support;
mod webhook;
