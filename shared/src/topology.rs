//! NATS names and the streams and buckets behind them (`architecture.md`,
//! "NATS contract"). Names carry the configured prefixes so tests and tenants
//! can share a server; [`Topology::ensure`] creates or updates everything and
//! is safe to run from every process at start.

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};

use crate::job::KindSpec;
use crate::settings::NatsSettings;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// How long events about one job stay in `GAD_EVENTS` (per-message TTL).
pub const JOB_EVENT_TTL: Duration = Duration::from_secs(15 * 60);

/// Tries at creating or updating one stream or bucket. Processes that start
/// together against a replicated cluster race to create the same streams; a
/// request that meets another's creation in flight can go unanswered until
/// it times out, and the next try finds the stream made.
const ENSURE_TRIES: u32 = 5;

/// Runs `op` again after a timeout, up to [`ENSURE_TRIES`] times, with a
/// growing pause (100 ms, 200 ms, …); other errors end it at once.
async fn retry_timeouts<T, E, Fut>(mut op: impl FnMut() -> Fut, timed_out: impl Fn(&E) -> bool) -> Result<T, E>
where
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut tries = 1;
    loop {
        match op().await {
            Err(e) if timed_out(&e) && tries < ENSURE_TRIES => {
                tokio::time::sleep(Duration::from_millis(100 << (tries - 1))).await;
                tries += 1;
            }
            result => return result,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Topology {
    stream_prefix: String,
    subject_prefix: String,
    settings: NatsSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("creating stream {name}: {source}")]
    Stream {
        name: String,
        source: async_nats::jetstream::context::CreateStreamError,
    },
    #[error("creating bucket {name}: {source}")]
    Bucket {
        name: String,
        source: async_nats::jetstream::context::CreateKeyValueError,
    },
}

impl Topology {
    pub fn new(settings: &NatsSettings) -> Self {
        Self {
            stream_prefix: settings.stream_prefix.clone(),
            subject_prefix: settings.subject_prefix.clone(),
            settings: settings.clone(),
        }
    }

    fn name(&self, base: &str) -> String {
        format!("{}{}", self.stream_prefix, base)
    }

    fn subject(&self, rest: &str) -> String {
        if self.subject_prefix.is_empty() {
            rest.to_string()
        } else {
            format!("{}.{}", self.subject_prefix, rest)
        }
    }

    pub fn jobs_stream(&self) -> String {
        self.name("GAD_JOBS")
    }
    pub fn events_stream(&self) -> String {
        self.name("GAD_EVENTS")
    }
    pub fn dlq_stream(&self) -> String {
        self.name("GAD_DLQ")
    }
    pub fn notify_stream(&self) -> String {
        self.name("GAD_NOTIFY")
    }
    pub fn telegram_stream(&self) -> String {
        self.name("GAD_TELEGRAM")
    }
    pub fn job_status_bucket(&self) -> String {
        self.name("GAD_JOB_STATUS")
    }
    pub fn idempotency_bucket(&self) -> String {
        self.name("GAD_IDEMPOTENCY")
    }
    pub fn revocation_bucket(&self) -> String {
        self.name("GAD_REVOCATION")
    }

    /// `gad.jobs.<group>.<kind tail>`.
    pub fn job_subject(&self, kind: &KindSpec) -> String {
        self.subject(&format!("gad.jobs.{}", kind.subject_suffix()))
    }
    /// Where bridged messages go that name no known kind or do not decode:
    /// the `import` lane, whose workers record them (a failed job, or the
    /// raw bytes on the dead-letter stream) rather than lose them.
    pub fn unroutable_job_subject(&self) -> String {
        self.subject("gad.jobs.import.unroutable")
    }
    /// The filter of one worker group's consumer.
    pub fn group_filter(&self, group: &str) -> String {
        self.subject(&format!("gad.jobs.{group}.>"))
    }
    /// Every event subject (the broadcaster's feed filter).
    pub fn events_filter(&self) -> String {
        self.subject("gad.events.>")
    }
    pub fn event_subject(&self, event_type: &str) -> String {
        self.subject(&format!("gad.events.{event_type}"))
    }
    pub fn dlq_subject(&self, kind: &KindSpec) -> String {
        self.subject(&format!("gad.dlq.{}", kind.subject_suffix()))
    }
    /// Every dead-letter subject (what operators list).
    pub fn dlq_filter(&self) -> String {
        self.subject("gad.dlq.>")
    }
    /// Where messages that could not even be decoded are kept, raw.
    pub fn dlq_undecodable_subject(&self) -> String {
        self.subject("gad.dlq.undecodable")
    }
    /// Telegram sends of priority 0 (must act now); read before [`Self::notify_bulk_subject`].
    pub fn notify_p0_subject(&self) -> String {
        self.subject("gad.notify.p0")
    }
    /// Telegram sends of priority 1 and 2.
    pub fn notify_bulk_subject(&self) -> String {
        self.subject("gad.notify.bulk")
    }
    /// Where a notification of `priority` is published.
    pub fn notify_subject(&self, priority: i16) -> String {
        if priority == 0 {
            self.notify_p0_subject()
        } else {
            self.notify_bulk_subject()
        }
    }
    /// Where ingress publishes webhook updates and the bot reads them.
    pub fn telegram_updates_subject(&self) -> String {
        self.subject("gad.telegram.updates")
    }
    /// Core-NATS subject on which every job-status bucket update is also seen,
    /// so one subscription per process can wake all waiting requests.
    pub fn job_status_updates(&self) -> String {
        format!("$KV.{}.>", self.job_status_bucket())
    }

    /// Creates or updates every stream and bucket of the contract.
    pub async fn ensure(&self, js: &jetstream::Context, token_ttl: Duration) -> Result<(), TopologyError> {
        let s = &self.settings;
        let streams = [
            stream::Config {
                name: self.jobs_stream(),
                subjects: vec![self.subject("gad.jobs.>")],
                retention: stream::RetentionPolicy::WorkQueue,
                discard: stream::DiscardPolicy::New,
                max_bytes: s.jobs_max_bytes,
                duplicate_window: Duration::from_secs(120),
                num_replicas: s.replicas,
                ..Default::default()
            },
            stream::Config {
                name: self.events_stream(),
                subjects: vec![self.subject("gad.events.>")],
                max_age: DAY,
                max_bytes: s.events_max_bytes,
                allow_message_ttl: true,
                allow_direct: true,
                num_replicas: s.replicas,
                ..Default::default()
            },
            stream::Config {
                name: self.dlq_stream(),
                subjects: vec![self.subject("gad.dlq.>")],
                max_age: 30 * DAY,
                max_bytes: s.dlq_max_bytes,
                num_replicas: s.replicas,
                ..Default::default()
            },
            stream::Config {
                name: self.notify_stream(),
                subjects: vec![self.subject("gad.notify.>")],
                retention: stream::RetentionPolicy::WorkQueue,
                max_bytes: s.events_max_bytes,
                num_replicas: s.replicas,
                ..Default::default()
            },
            stream::Config {
                name: self.telegram_stream(),
                subjects: vec![self.telegram_updates_subject()],
                max_age: DAY,
                max_bytes: s.events_max_bytes,
                duplicate_window: Duration::from_secs(3600),
                num_replicas: s.replicas,
                ..Default::default()
            },
        ];
        for config in streams {
            let name = config.name.clone();
            retry_timeouts(
                || js.create_or_update_stream(config.clone()),
                |e: &jetstream::context::CreateStreamError| {
                    matches!(e.kind(), jetstream::context::CreateStreamErrorKind::TimedOut)
                },
            )
            .await
            .map_err(|source| TopologyError::Stream { name, source })?;
        }
        let buckets = [
            (self.job_status_bucket(), DAY),
            (self.idempotency_bucket(), DAY),
            // Revocation entries only need to outlive the tokens they revoke.
            (self.revocation_bucket(), token_ttl + Duration::from_secs(60)),
        ];
        for (bucket, max_age) in buckets {
            let config = kv::Config {
                bucket: bucket.clone(),
                history: 1,
                max_age,
                num_replicas: s.replicas,
                max_bytes: s.events_max_bytes,
                ..Default::default()
            };
            retry_timeouts(
                || js.create_or_update_key_value(config.clone()),
                |e: &jetstream::context::CreateKeyValueError| {
                    matches!(e.kind(), jetstream::context::CreateKeyValueErrorKind::TimedOut)
                },
            )
            .await
            .map_err(|source| TopologyError::Bucket { name: bucket, source })?;
        }
        Ok(())
    }

    /// Removes everything [`Topology::ensure`] created (tests clean up with it).
    pub async fn remove(&self, js: &jetstream::Context) {
        for name in [
            self.jobs_stream(),
            self.events_stream(),
            self.dlq_stream(),
            self.notify_stream(),
            self.telegram_stream(),
        ] {
            let _ = js.delete_stream(name).await;
        }
        for bucket in [
            self.job_status_bucket(),
            self.idempotency_bucket(),
            self.revocation_bucket(),
        ] {
            let _ = js.delete_key_value(bucket).await;
        }
    }
}

/// The servers of `nats.url`: one URL, or a comma-separated list (every node
/// of a cluster), so a process can connect while any one of them is down and
/// reconnect to the others when its own goes away.
pub fn server_urls(url: &str) -> Vec<&str> {
    url.split(',').map(str::trim).filter(|u| !u.is_empty()).collect()
}

/// Connects to NATS with the configured timeouts and returns the client and a
/// JetStream context whose API and PubAck waits are bounded.
pub async fn connect(
    settings: &NatsSettings,
) -> Result<(async_nats::Client, jetstream::Context), async_nats::ConnectError> {
    let servers = server_urls(&settings.url);
    if servers.is_empty() {
        return Err(async_nats::ConnectError::with_source(
            async_nats::ConnectErrorKind::ServerParse,
            "nats.url names no server",
        ));
    }
    let options = async_nats::ConnectOptions::new()
        .connection_timeout(settings.connect_timeout)
        .request_timeout(Some(settings.publish_timeout))
        .retry_on_initial_connect();
    let client = crate::tls::nats_options(settings, options)
        .map_err(|e| async_nats::ConnectError::with_source(async_nats::ConnectErrorKind::Tls, e))?
        .connect(servers)
        .await?;
    let js = jetstream::ContextBuilder::new()
        .timeout(settings.publish_timeout)
        .ack_timeout(settings.publish_timeout)
        .max_ack_inflight(settings.max_ack_inflight)
        .build(client.clone());
    Ok((client, js))
}

#[cfg(test)]
mod tests {
    use super::server_urls;

    #[test]
    fn a_url_list_names_every_node() {
        assert_eq!(server_urls("nats://a:4222"), ["nats://a:4222"]);
        assert_eq!(
            server_urls("nats://a:4222, nats://b:4222,nats://c:4222,"),
            ["nats://a:4222", "nats://b:4222", "nats://c:4222"]
        );
    }
}
