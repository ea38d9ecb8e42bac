//! The WebSocket endpoint (§8).

pub mod connection;
pub mod resume;
pub mod topics;
pub mod writer;
