//! Telegram (§9): delivering notification rows, and the bot.
//!
//! - [`delivery`]: the two shared durable consumers on `GAD_NOTIFY`, priority 0 first.
//! - [`sender`]: one notification, from message to acknowledgement.
//! - [`rows`]: the `notifications` rows that decide what is sent.
//! - [`limiter`]: 1 message/s per chat and 25/s per bot, cluster-wide, in Redis.
//! - [`render`]: HTML with every value escaped, buttons as callback data.
//! - [`split`]: messages over Telegram's 4096 characters, in valid HTML parts.
//! - [`api`]: the teloxide `Bot` and what each failure means.
//! - [`bot`]: commands, linking, the `/crear` wizard, answers to assignments.

pub mod api;
pub mod bot;
pub mod delivery;
pub mod limiter;
pub mod render;
pub mod rows;
pub mod sender;
pub mod split;
