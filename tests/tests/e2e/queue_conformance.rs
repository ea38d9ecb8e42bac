//! One contract, two brokers (issue 8): every case here runs once with the
//! jobs on JetStream and once on RabbitMQ, through the same queue access the
//! services use (`gad_shared::queue`). `raw` drives the queue itself
//! (publish and confirm, a full queue, redelivery after a crashed consumer,
//! retry delays, hand-back); `pipeline` runs the workers on it (duplicates
//! applied once, exhausted jobs dead-lettered, RabbitMQ's delivery limit).

mod pipeline;
mod raw;

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, consumer::AckPolicy, consumer::pull};
use futures::StreamExt;
use gad_e2e::isolation::Isolation;
use gad_shared::queue::rabbit::{RabbitConsumer, RabbitLink, RabbitNames};
use gad_shared::queue::{Backend, Delivery, PublishFailure, Publisher};
use gad_shared::submit::{NewJob, Prepared, prepare};
use gad_shared::topology::{self, Topology};
use gad_workers::WorkersSettings;

use crate::custom_app::CustomApp;

/// Ack wait of the JetStream consumers here, the workers' and the test's:
/// how long a crashed consumer's job waits before it is redelivered.
pub const ACK_WAIT: Duration = Duration::from_secs(2);

/// Both brokers, for each case.
macro_rules! on_both {
    ($case:ident) => {
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_jetstream() -> anyhow::Result<()> {
                super::$case(gad_shared::queue::Backend::Jetstream).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_rabbitmq() -> anyhow::Result<()> {
                super::$case(gad_shared::queue::Backend::Rabbitmq).await
            }
        }
    };
}
pub(crate) use on_both;

/// A test's services with the jobs on `backend`, the queue declared, and a
/// publisher of its own.
pub struct Harness {
    pub app: CustomApp,
    pub publisher: Publisher,
    pub js: jetstream::Context,
    pub topology: Topology,
    link: Option<RabbitLink>,
}

impl Harness {
    pub async fn new(backend: Backend, edit: impl FnOnce(&mut Isolation)) -> anyhow::Result<Self> {
        let app = CustomApp::new(|iso| {
            iso.queue.backend = backend;
            edit(iso);
        })
        .await?;
        let iso = &app.iso;
        let (_client, js) = topology::connect(&iso.nats).await?;
        let topology = Topology::new(&iso.nats);
        topology.ensure(&js, iso.auth.token_ttl()).await?;
        let link = match backend {
            Backend::Jetstream => None,
            Backend::Rabbitmq => Some(
                RabbitLink::connect(&iso.queue.rabbitmq, RabbitNames::new(&iso.nats), "gad-e2e conformance").await?,
            ),
        };
        let publisher = match &link {
            Some(link) => Publisher::RabbitMq(link.clone()),
            None => Publisher::new(&iso.queue, &iso.nats, js.clone(), "gad-e2e conformance"),
        };
        Ok(Self {
            app,
            publisher,
            js,
            topology,
            link,
        })
    }

    /// A job of `kind` ready to publish, under a fresh id.
    pub fn job(&self, kind: &'static str, payload: serde_json::Value, by: Option<i64>) -> anyhow::Result<Prepared> {
        Ok(prepare(
            &self.topology,
            NewJob {
                job_id: uuid::Uuid::now_v7(),
                kind,
                summary: serde_json::json!({}),
                payload,
                request_id: None,
                submitted_by: by,
                client: None,
            },
        )?)
    }

    /// `Ok(true)`: the broker already had this job id (JetStream's window).
    pub async fn publish(&self, job: &Prepared) -> Result<bool, PublishFailure> {
        self.publisher
            .publish(&job.subject, &job.headers, &job.payload, &job.record.job_id.to_string())
            .await
    }

    /// A consumer of lane `group` outside the workers.
    pub async fn consumer(&self, group: &str) -> anyhow::Result<RawConsumer> {
        match &self.link {
            Some(link) => {
                // A link of its own, so the consumer can crash alone.
                let own = RabbitLink::connect(link.settings(), link.names().clone(), "gad-e2e raw consumer").await?;
                let consumer = RabbitConsumer::start(&own, group, 1).await?;
                Ok(RawConsumer::Rabbit(own, Box::new(consumer)))
            }
            None => {
                let stream = self.js.get_stream(self.topology.jobs_stream()).await?;
                let consumer = stream
                    .create_consumer(pull::Config {
                        durable_name: Some(group.to_string()),
                        filter_subject: self.topology.group_filter(group),
                        ack_policy: AckPolicy::Explicit,
                        ack_wait: ACK_WAIT,
                        max_ack_pending: 64,
                        max_deliver: 10,
                        ..Default::default()
                    })
                    .await?;
                let messages = consumer.stream().max_messages_per_batch(1).messages().await?;
                Ok(RawConsumer::JetStream(Box::new(messages)))
            }
        }
    }

    /// Workers on this harness' queue, with JetStream's ack wait at [`ACK_WAIT`].
    pub async fn start_workers(&mut self, edit: impl FnOnce(&mut WorkersSettings)) -> anyhow::Result<()> {
        self.app
            .start_workers(|s| {
                s.workers.default_group.ack_wait = ACK_WAIT;
                s.workers.default_group.deadline = Duration::from_secs(1);
                edit(s);
            })
            .await
    }

    /// The job's row once it is terminal: (status, attempts).
    pub async fn terminal(&self, job_id: uuid::Uuid, within: Duration) -> anyhow::Result<(String, i32)> {
        self.terminal_other_than(job_id, within, &[]).await
    }

    /// [`Self::terminal`] once the row has left `dead` (a replay put it back).
    pub async fn terminal_after_replay(&self, job_id: uuid::Uuid, within: Duration) -> anyhow::Result<(String, i32)> {
        self.terminal_other_than(job_id, within, &["dead"]).await
    }

    async fn terminal_other_than(
        &self,
        job_id: uuid::Uuid,
        within: Duration,
        skip: &[&str],
    ) -> anyhow::Result<(String, i32)> {
        let until = tokio::time::Instant::now() + within;
        loop {
            let row: Option<(String, i32)> =
                sqlx::query_as("SELECT status::text, attempts FROM jobs WHERE job_id = $1")
                    .bind(job_id)
                    .fetch_optional(&self.app.db)
                    .await?;
            if let Some((status, attempts)) = &row
                && !matches!(status.as_str(), "queued" | "running")
                && !skip.contains(&status.as_str())
            {
                return Ok((status.clone(), *attempts));
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < until,
                "job {job_id} not finished within {within:?} (row: {row:?})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        if let Some(link) = &self.link {
            link.close().await;
        }
        self.app.stop().await
    }
}

/// A consumer the test holds: it can take a delivery, settle it, or crash.
pub enum RawConsumer {
    JetStream(Box<pull::Stream>),
    Rabbit(RabbitLink, Box<RabbitConsumer>),
}

impl RawConsumer {
    /// The next delivery, or an error when none came `within`.
    pub async fn next(&mut self, within: Duration) -> anyhow::Result<Delivery> {
        let next = async {
            match self {
                RawConsumer::JetStream(messages) => {
                    let msg = messages.next().await.context("stream ended")??;
                    anyhow::Ok(Delivery::from_jetstream(msg))
                }
                RawConsumer::Rabbit(_, consumer) => Ok(consumer.next().await.context("consumer ended")??),
            }
        };
        tokio::time::timeout(within, next)
            .await
            .with_context(|| format!("no delivery within {within:?}"))?
    }

    /// Dies without settling what it took: RabbitMQ sees the connection
    /// drop; JetStream just stops hearing from it.
    pub async fn crash(self) {
        match self {
            RawConsumer::JetStream(messages) => drop(messages),
            RawConsumer::Rabbit(link, consumer) => {
                drop(consumer);
                link.close().await;
            }
        }
    }
}
