//! What a business job writes inside its one transaction (§ conventions):
//! the job's own completion, the actor, historial, audit and outbox rows.
//! Nothing here publishes: the outbox relay does, after commit.

pub mod actor;
pub mod audit;
pub mod historial;
pub mod job_guard;
pub mod outbox;

/// The transaction every business handler works in.
pub type Tx<'a> = sqlx::Transaction<'a, sqlx::Postgres>;
