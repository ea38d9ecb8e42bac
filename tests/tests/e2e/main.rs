//! End-to-end tests: workers, ingress and broadcaster started per test
//! against the real services, driven over HTTP and WebSocket.
//!
//! Run with `cargo nextest run -p gad-e2e` after `deploy/services.sh up`.

mod bad_input;
mod cleanup;
mod error_shape;
mod modes;
mod nats_down;
mod nearest_oracle;
