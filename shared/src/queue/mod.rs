//! The jobs queue behind one interface, on either broker (issue 8): NATS
//! JetStream (`GAD_JOBS`, the default) or RabbitMQ (quorum queues, through
//! lapin), chosen by `queue.backend`. Only the jobs queue moves: events,
//! the status bucket, notifications and the dead-letter stream stay on NATS
//! whichever broker carries the jobs.
//!
//! - [`Publisher`]: a job is stored when the broker confirmed it.
//! - [`Delivery`]: one delivery to a worker, with its attempt number, and
//!   the one way to settle it ([`Ack`]).
//! - [`rabbit`]: the RabbitMQ names, their declaration, connection and consumer.

mod delivery;
mod publisher;
pub mod rabbit;
mod settings;

pub use delivery::{Ack, Acker, Delivery};
pub use publisher::{PublishFailure, Publisher};
pub use settings::{Backend, QueueSettings, RabbitSettings};
