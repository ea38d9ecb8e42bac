//! End-to-end tests: workers, ingress and broadcaster started per test
//! against the real services, driven over HTTP and WebSocket.
//!
//! Run with `cargo nextest run -p gad-e2e` after `deploy/services.sh up`.

mod alert_rules;
mod amqp_bridge;
mod auth;
mod bad_input;
mod board_page;
mod chaos;
mod cleanup;
mod client_ip;
mod created_location;
mod custom_app;
mod dead_letter_secrets;
mod dlq;
mod edge;
mod efectivos;
mod emergency;
mod emergency_budget;
mod error_shape;
mod http_metrics;
mod idempotency;
mod import;
mod job_metrics;
mod jobs;
mod k8s_manifests;
mod map;
mod max_deliveries;
mod modes;
mod nats_down;
mod nearest_oracle;
mod negotiation;
mod openapi_fuzz;
mod ops;
mod otlp;
mod queue_conformance;
mod readiness;
mod relay;
mod retention;
mod revocation_restart;
mod role_matrix;
mod stats;
mod tasks;
mod telegram;
mod tls;
mod trace;
mod users;
mod websocket;
