//! `gad import`: bulk loads of efectivos, tareas and location updates from
//! CSV or NDJSON files, published as `import.*` jobs to `GAD_JOBS` (the
//! workers' `import` lane applies them).
//!
//! - [`kind`]: what each kind's file holds, and its rows' checks and keys
//!   (the handlers' own, from [`crate::jobs::import`]);
//! - [`source`]: reading rows; [`rows`]: a row as a job (UUIDv5 id) or a reject;
//!   [`planner`]: both on a thread of their own, ahead of the publisher;
//! - [`publisher`]: async publish with a bounded number of PubAcks in flight;
//! - [`watermark`], [`checkpoint`]: how far the run got, saved atomically;
//! - [`rejects`], [`summary`], [`progress`]: what the operator sees;
//! - [`target`]: NATS, bound within the configured timeouts; [`run`]: one run.

pub mod checkpoint;
pub mod error;
pub mod kind;
pub mod planner;
pub mod progress;
pub mod publisher;
pub mod rejects;
pub mod rows;
pub mod run;
pub mod source;
pub mod summary;
pub mod target;
pub mod watermark;

pub use error::ImportError;
pub use kind::ImportKind;
pub use run::{ImportOptions, run};
pub use source::Format;
pub use summary::Summary;
pub use target::Target;
