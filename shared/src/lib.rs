//! `gad-shared`: what ingress, workers and broadcaster all speak.
//!
//! - [`settings`]: typed configuration from file and environment.
//! - [`envelope`]: MessagePack job and event envelopes on NATS.
//! - [`job`]: job kinds, lanes, statuses and the fast status record.
//! - [`topology`]: stream, subject and bucket names, and their creation.
//! - [`submit`]: publishing a job and recording its `queued` status.
//! - [`auth`]: the JWT issuer and verifier; [`revocation`]: the mirror of
//!   revoked tokens they check.
//! - [`error_body`] and [`http_error`]: the §7 error shape and its HTTP mapping.
//! - [`dlq`]: listing, replaying and discarding dead-letter records.
//! - [`db`], [`redis_conn`]: PostgreSQL pools and migrations; soft Redis.
//! - [`telemetry`], [`shutdown`], [`password`]: process plumbing.

pub mod auth;
pub mod coordinates;
pub mod db;
pub mod dlq;
pub mod domain;
pub mod envelope;
pub mod error_body;
pub mod http_error;
pub mod job;
pub mod lag;
pub mod metric_names;
pub mod otlp;
pub mod password;
pub mod queue;
pub mod redis_conn;
pub mod revocation;
pub mod settings;
pub mod shutdown;
pub mod stats_cache;
pub mod submit;
pub mod telemetry;
pub mod time;
pub mod tls;
pub mod topology;
pub mod trace_context;
