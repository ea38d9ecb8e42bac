//! `queue.*`: which broker carries the jobs, and RabbitMQ's knobs.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Jetstream,
    Rabbitmq,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueSettings {
    pub backend: Backend,
    pub rabbitmq: RabbitSettings,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RabbitSettings {
    /// `amqp://user:password@host:5672/vhost` (may carry a password: never logged).
    pub url: String,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest wait for a publisher confirm.
    #[serde(with = "humantime_serde")]
    pub publish_timeout: Duration,
    /// Deliveries of one copy of a job (counted by the quorum queue) after
    /// which it is dead-lettered: the backstop for a job whose worker
    /// crashed every time, as `max_deliver` is on JetStream.
    pub delivery_limit: u32,
    /// Jobs one lane's queue holds; past it publishes are refused (`queue_full`).
    pub max_length: u64,
    /// The delays a retry can wait, one TTL queue each (RabbitMQ 3.10 has
    /// no delayed-message plugin and expires messages only at a queue's
    /// head). A retry waits the longest bucket not over the delay it asked
    /// for; under the shortest it is requeued at once.
    #[serde(deserialize_with = "durations")]
    pub retry_buckets: Vec<Duration>,
}

impl Default for RabbitSettings {
    fn default() -> Self {
        Self {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            connect_timeout: Duration::from_secs(3),
            publish_timeout: Duration::from_secs(2),
            delivery_limit: 10,
            max_length: 1_000_000,
            retry_buckets: [250, 1_000, 5_000, 15_000, 60_000, 300_000]
                .into_iter()
                .map(Duration::from_millis)
                .collect(),
        }
    }
}

impl std::fmt::Debug for RabbitSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitSettings")
            .field("url", &"<redacted>")
            .field("connect_timeout", &self.connect_timeout)
            .field("publish_timeout", &self.publish_timeout)
            .field("delivery_limit", &self.delivery_limit)
            .field("max_length", &self.max_length)
            .field("retry_buckets", &self.retry_buckets)
            .finish()
    }
}

impl RabbitSettings {
    /// The bucket a retry after `delay` waits in, or `None` for at once.
    pub fn bucket_for(&self, delay: Duration) -> Option<Duration> {
        self.retry_buckets.iter().copied().filter(|b| *b <= delay).max()
    }
}

fn durations<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
    let v: Vec<humantime_serde::Serde<Duration>> = Vec::deserialize(d)?;
    Ok(v.into_iter().map(humantime_serde::Serde::into_inner).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_waits_the_longest_bucket_not_over_its_delay() {
        let s = RabbitSettings::default();
        assert_eq!(s.bucket_for(Duration::from_millis(100)), None);
        assert_eq!(
            s.bucket_for(Duration::from_millis(250)),
            Some(Duration::from_millis(250))
        );
        assert_eq!(s.bucket_for(Duration::from_millis(4_999)), Some(Duration::from_secs(1)));
        assert_eq!(s.bucket_for(Duration::from_secs(3_600)), Some(Duration::from_secs(300)));
    }
}
