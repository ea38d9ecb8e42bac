//! `gad-workers`: the worker pools. Each worker group (`geo`, `tasks`,
//! `emergency`, `import`) binds one durable pull consumer on its own
//! subjects; any number of processes share it. Jobs run with bounded
//! concurrency under a deadline, and their outcomes become acknowledgements
//! in exactly one place ([`outcome`]).
//!
//! - [`application`], [`consumer`], [`process`]: the group loops and one delivery.
//! - [`circuit_breaker`]: the groups stop pulling while PostgreSQL is away.
//! - [`outcome`], [`backoff`], [`dead_letter`]: acknowledgements, retries, the DLQ;
//!   [`max_deliveries`]: jobs no worker ever acknowledged, dead-lettered too.
//! - [`job_store`], [`events`]: the `jobs` row, the fast status, `GAD_EVENTS`.
//! - [`relay`], [`notify_relay`]: the outbox, published to `GAD_EVENTS` and `GAD_NOTIFY`.
//! - [`job_metrics`]: per-kind counters, durations, in-flight jobs, consumer lag.
//! - [`jobs`]: the handlers, one file per kind.
//! - [`seed`]: the deterministic demo and benchmark data generator.
//! - [`import`]: `gad import`, bulk loads from CSV or NDJSON files as `import.*` jobs.

pub mod amqp_bridge;
pub mod application;
pub mod backoff;
pub mod circuit_breaker;
pub mod consumer;
pub mod dead_letter;
pub mod effects;
pub mod events;
pub mod health;
pub mod import;
pub mod job_metrics;
pub mod job_store;
pub mod jobs;
pub mod max_deliveries;
pub mod notification_gauges;
pub mod notify_relay;
pub mod outcome;
pub mod process;
pub mod rabbit_consumer;
pub mod rabbit_dead;
pub mod relay;
pub mod retention;
pub mod row_batch;
pub mod seed;
pub mod settings;
pub mod timers;

pub use application::Application;
pub use settings::WorkersSettings;
