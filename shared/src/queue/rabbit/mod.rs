//! The jobs queue on RabbitMQ.
//!
//! - A topic exchange `<prefix>GAD_JOBS` takes every job under its NATS
//!   subject as routing key, so a publisher speaks the same names on both brokers.
//! - One durable quorum queue per lane (`<prefix>GAD_JOBS.<group>`) bound
//!   with the lane's filter: the group's worker processes share it, and
//!   their prefetch bounds what each runs at once.
//! - Retries wait in TTL queues, one per delay bucket, behind an exchange of
//!   their own; an expired message is dead-lettered back to `GAD_JOBS` under
//!   its subject and routed to its lane again.
//! - A copy delivered `delivery_limit` times without an acknowledgement (its
//!   worker crashed each time) is dead-lettered to `<prefix>GAD_JOBS.dead`,
//!   which the workers move to the dead-letter stream.

mod consume;
mod headers;
mod link;
mod names;

pub use consume::{RabbitConsumer, delivery_from};
pub use headers::{to_field_table, to_header_map};
pub use link::{RabbitError, RabbitLink};
pub use names::RabbitNames;

/// Header carrying the attempts a job had before this copy was published
/// (a retry copy starts the broker's delivery count again).
pub const ATTEMPTS_BEFORE: &str = "Gad-Attempts-Before";
/// The quorum queue's count of earlier deliveries of this copy.
pub const DELIVERY_COUNT: &str = "x-delivery-count";

/// Headers that count one copy's deliveries (the broker's `x-…`, and ours):
/// left behind by any new copy of a job, which counts afresh.
pub fn is_delivery_bookkeeping(name: &str) -> bool {
    name.starts_with("x-") || name.eq_ignore_ascii_case(ATTEMPTS_BEFORE)
}
