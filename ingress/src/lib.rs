//! `gad-ingress`: the thin HTTP edge. It authenticates and validates requests
//! and turns every write and PostGIS query into a job on `GAD_JOBS`; only
//! cheap reads are answered directly. Accepting work needs NATS alone.
//!
//! - [`application`]: build (bind, connect) and run with graceful shutdown.
//! - [`routes`]: the router and one module per resource.
//! - [`submit`]: publishing a job and recording its `queued` status.
//! - [`job_answer`], [`waiters`], [`prefer`]: 202 or a synchronous answer.
//! - [`caller`], [`validate`]: who is asking and whether the input is valid.
//! - [`openapi`]: the OpenAPI document generated from the handlers, and `/docs`.

pub mod admission;
pub mod application;
pub mod body;
pub mod caller;
pub mod client;
pub mod created;
pub mod http_metrics;
pub mod hygiene;
pub mod idempotency;
pub mod job_answer;
pub mod nats;
pub mod negotiation;
pub mod openapi;
pub mod prefer;
pub mod rate_limit;
pub mod rate_limit_store;
pub mod routes;
pub mod settings;
pub mod shedding;
pub mod state;
pub mod submit;
pub mod validate;
pub mod waiters;

pub use application::Application;
pub use settings::IngressSettings;
