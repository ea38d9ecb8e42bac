//! Chaos tests (issue 4): things broken on purpose while jobs run. Each test
//! starts what it breaks itself: worker processes it signals or kills, a
//! proxy in front of PostgreSQL it cuts, a NATS server it restarts, a node of
//! a three-node NATS cluster it kills (issue 9). Waits and backoff are
//! configured short so each stays well under a minute.

mod db_outage;
mod dead_after_attempts;
mod kill_nine;
pub(crate) mod load;
mod nats_cluster;
mod nats_restart;
mod sigterm_drain;
