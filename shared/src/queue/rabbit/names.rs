//! RabbitMQ names under the NATS settings' prefixes, so one test or tenant
//! uses one set of names on both brokers.

use std::time::Duration;

use crate::settings::NatsSettings;
use crate::topology::Topology;

#[derive(Debug, Clone)]
pub struct RabbitNames {
    prefix: String,
    topology: Topology,
}

impl RabbitNames {
    pub fn new(nats: &NatsSettings) -> Self {
        Self {
            prefix: nats.stream_prefix.clone(),
            topology: Topology::new(nats),
        }
    }

    /// The topic exchange every job is published to.
    pub fn exchange(&self) -> String {
        format!("{}GAD_JOBS", self.prefix)
    }
    /// One lane's quorum queue.
    pub fn queue(&self, group: &str) -> String {
        format!("{}GAD_JOBS.{group}", self.prefix)
    }
    /// The lane's binding: its NATS filter in AMQP's wildcard (`>` is `#`).
    pub fn binding(&self, group: &str) -> String {
        let filter = self.topology.group_filter(group);
        match filter.strip_suffix('>') {
            Some(head) => format!("{head}#"),
            None => filter,
        }
    }
    /// Exchange and queue of one retry bucket (a fanout into a TTL queue).
    pub fn retry(&self, bucket: Duration) -> String {
        format!("{}GAD_JOBS.retry.{}ms", self.prefix, bucket.as_millis())
    }
    /// Exchange and queue of copies dead-lettered by the broker.
    pub fn dead(&self) -> String {
        format!("{}GAD_JOBS.dead", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_prefixes_and_bindings_use_amqp_wildcards() {
        let nats = NatsSettings {
            stream_prefix: "T1_".into(),
            subject_prefix: "t1".into(),
            ..NatsSettings::default()
        };
        let n = RabbitNames::new(&nats);
        assert_eq!(n.exchange(), "T1_GAD_JOBS");
        assert_eq!(n.queue("geo"), "T1_GAD_JOBS.geo");
        assert_eq!(n.binding("geo"), "t1.gad.jobs.geo.#");
        assert_eq!(n.retry(Duration::from_secs(1)), "T1_GAD_JOBS.retry.1000ms");
    }
}
