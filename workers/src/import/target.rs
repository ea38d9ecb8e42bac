//! Where an import publishes: the jobs queue (the jobs stream, or RabbitMQ
//! when `queue.backend` says so) and the status bucket of the configured
//! NATS, bound (not created: the workers create them at start) within the
//! configured timeouts, so a wrong URL fails fast and says so.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use gad_shared::queue::rabbit::{RabbitLink, RabbitNames};
use gad_shared::queue::{Backend, Publisher, QueueSettings};
use gad_shared::settings::NatsSettings;
use gad_shared::topology::{self, Topology};

use super::error::ImportError;

pub struct Target {
    pub js: jetstream::Context,
    /// Where the jobs go.
    pub queue: Publisher,
    pub topology: Topology,
    pub status: kv::Store,
    /// Longest wait for one PubAck or status write (`nats.publish_timeout`).
    pub publish_timeout: Duration,
    /// Kept so the connection lives as long as the target.
    _client: async_nats::Client,
}

impl Target {
    pub async fn connect(settings: &NatsSettings, queue: &QueueSettings) -> Result<Target, ImportError> {
        let url = &settings.url;
        let (client, js) = topology::connect(settings)
            .await
            .map_err(|e| ImportError::Nats(format!("connecting to {url}: {e}")))?;
        let topology = Topology::new(settings);
        // The client connects in the background: the first request also tells
        // whether the server is there at all.
        let within = settings.connect_timeout + settings.publish_timeout;
        let jobs = topology.jobs_stream();
        tokio::time::timeout(within, js.get_stream(&jobs))
            .await
            .map_err(|_| ImportError::Nats(format!("no answer from {url} within {within:?}")))?
            .map_err(|e| ImportError::Nats(format!("stream {jobs} on {url}: {e} (the workers create it at start)")))?;
        let bucket = topology.job_status_bucket();
        let status = tokio::time::timeout(settings.publish_timeout, js.get_key_value(&bucket))
            .await
            .map_err(|_| ImportError::Nats(format!("no answer from {url} within {:?}", settings.publish_timeout)))?
            .map_err(|e| ImportError::Nats(format!("bucket {bucket} on {url}: {e}")))?;
        let queue = match queue.backend {
            Backend::Jetstream => Publisher::new(queue, settings, js.clone(), "gad import"),
            Backend::Rabbitmq => Publisher::RabbitMq(
                RabbitLink::connect(&queue.rabbitmq, RabbitNames::new(settings), "gad import")
                    .await
                    .map_err(|e| ImportError::Nats(format!("the jobs queue: {e}")))?,
            ),
        };
        Ok(Target {
            queue,
            js,
            topology,
            status,
            publish_timeout: settings.publish_timeout,
            _client: client,
        })
    }
}
