//! `gad-broadcaster`: pushes what happened to the people concerned. Every
//! replica reads `GAD_EVENTS` and delivers each event to its own WebSocket
//! connections by topic, once per connection; every connection has its own
//! writer and bounded queue, so no broadcast ever waits on a slow client.
//!
//! - [`application`], [`routes`]: build, serve, drain;
//!   [`test_broadcast`]: the non-production broadcast route.
//! - [`feed`]: reading `GAD_EVENTS`.
//! - [`hub`]: subscriptions and non-blocking fan-out; [`history`]: the
//!   recent events per topic that `resume` replays; [`queue`]: a
//!   connection's bounded outbound queue.
//! - [`ws`]: the connection protocol, topic authorization and the writer.
//! - [`frames`]: the frame shapes and close codes.
//! - [`telegram`]: notification delivery to Telegram (rate-limited
//!   cluster-wide) and the bot.

pub mod application;
pub mod feed;
pub mod frames;
pub mod history;
pub mod hub;
pub mod queue;
pub mod routes;
pub mod settings;
pub mod state;
pub mod telegram;
pub mod test_broadcast;
pub mod ws;

pub use application::Application;
pub use settings::BroadcasterSettings;
