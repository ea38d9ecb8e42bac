//! The WebSocket board (§8) from a client's side: resume, slow consumers,
//! replicas, heartbeats and capacity. Each test runs the broadcaster alone
//! against its own streams and publishes events itself, as the workers do.

mod drain;
mod limits;
mod replicas;
mod resume;
mod routes;
mod slow_consumer;
mod support;
