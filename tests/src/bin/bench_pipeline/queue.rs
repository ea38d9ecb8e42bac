//! The geo lane's backlog on whichever broker carries the jobs
//! (`queue.backend`, `BENCH_QUEUE`), so the drain after phases 1 and 5 means
//! the same on both: every job accepted has been run and settled.
//!
//! - JetStream: the geo consumer's `num_pending` (not yet delivered) and
//!   `num_ack_pending` (delivered, not yet acknowledged).
//! - RabbitMQ: a passive `queue.declare` gives only the ready messages of the
//!   lane's quorum queue (and of the retry queues, where a retried job
//!   waits); unacknowledged ones are not counted. What is in flight is the
//!   jobs accepted since the phase began (every 202 is a publisher confirm)
//!   that have neither a terminal `jobs` row nor a ready message. A job
//!   counts as finished once its row is committed; its status, event and
//!   acknowledgement follow within milliseconds (the drain then waits 2 s
//!   for them, as on JetStream), so the in-flight figure runs a little under
//!   the broker's unacknowledged count. The rows are counted only while
//!   nothing is ready (the tail), and at the reports, so the count does not
//!   load PostgreSQL while the workers drain. Checked against `rabbitmqctl
//!   list_queues messages_ready messages_unacknowledged`: `message_count`
//!   of a quorum queue is its ready messages only.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream;
use gad_shared::queue::RabbitSettings;
use gad_shared::queue::rabbit::{RabbitLink, RabbitNames};
use gad_shared::settings::NatsSettings;
use lapin::Channel;
use lapin::options::{QueueDeclareOptions, QueueDeleteOptions, QueuePurgeOptions};
use lapin::types::FieldTable;
use sqlx::PgPool;

/// `BENCH_QUEUE` / `GAD_QUEUE__BACKEND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QueueKind {
    Jetstream,
    Rabbitmq,
}

impl QueueKind {
    pub fn label(self) -> &'static str {
        match self {
            QueueKind::Jetstream => "JetStream",
            QueueKind::Rabbitmq => "RabbitMQ",
        }
    }
    /// What a 202 waited for.
    pub fn accepted_means(self) -> &'static str {
        match self {
            QueueKind::Jetstream => "202 = PubAck",
            QueueKind::Rabbitmq => "202 = publisher confirm",
        }
    }
}

/// Settings of the benchmark's RabbitMQ names: the services' defaults
/// (bench.sh sets none of the knobs but the URL), so declaring agrees.
pub fn rabbit_settings(url: &str) -> RabbitSettings {
    RabbitSettings {
        url: url.to_string(),
        ..RabbitSettings::default()
    }
}

pub fn rabbit_names(stream_prefix: &str, subject_prefix: &str) -> RabbitNames {
    RabbitNames::new(&NatsSettings {
        stream_prefix: stream_prefix.to_string(),
        subject_prefix: subject_prefix.to_string(),
        ..NatsSettings::default()
    })
}

/// The raw-publish queue of phase 4 (deleted by the phase, and by cleanup
/// after an interrupted run).
pub fn raw_publish_queue(stream_prefix: &str) -> String {
    format!("{stream_prefix}RAW_PUBLISH")
}

/// Deletes every RabbitMQ queue and exchange of the benchmark's prefix.
pub async fn delete_rabbitmq(url: &str, stream_prefix: &str, subject_prefix: &str) -> anyhow::Result<()> {
    let link = RabbitLink::lazy(
        &rabbit_settings(url),
        rabbit_names(stream_prefix, subject_prefix),
        "bench_pipeline cleanup",
    );
    let channel = link.channel().await.context("connecting to RabbitMQ")?;
    channel
        .queue_delete(
            raw_publish_queue(stream_prefix).as_str().into(),
            QueueDeleteOptions::default(),
        )
        .await
        .context("deleting the raw-publish queue")?;
    drop(channel);
    link.delete_all()
        .await
        .context("deleting the jobs queues and exchanges")?;
    Ok(())
}

/// One look at the lane: messages waiting, and those delivered but not yet
/// settled (`None`: not counted this time, RabbitMQ while messages wait).
#[derive(Debug, Clone, Copy)]
pub struct Depth {
    pub pending: u64,
    pub unacked: Option<u64>,
}

pub enum Backlog {
    JetStream {
        js: jetstream::Context,
        stream: String,
        consumer: String,
    },
    RabbitMq {
        link: RabbitLink,
        channel: Channel,
        /// The lane's queue, then the retry queues.
        queues: Vec<String>,
        db: PgPool,
        /// Terminal rows when the phase began.
        done_at_mark: u64,
        /// Jobs accepted (202 or 200) since the mark.
        accepted: u64,
    },
}

const TERMINAL_ROWS: &str = "SELECT count(*) FROM jobs WHERE status IN ('succeeded', 'failed', 'dead', 'cancelled')";

/// Terminal `jobs` rows now: taken before a phase, so that its jobs are told apart.
pub async fn terminal_rows(db: &PgPool) -> anyhow::Result<u64> {
    let (n,): (i64,) = sqlx::query_as(TERMINAL_ROWS)
        .fetch_one(db)
        .await
        .context("counting terminal jobs rows")?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// What the drain needs to know of the broker, made once per run.
pub enum QueueAccess {
    JetStream { nats_url: String, stream: String },
    RabbitMq { link: RabbitLink, db: PgPool },
}

impl QueueAccess {
    pub async fn new(
        kind: QueueKind,
        nats_url: &str,
        amqp_url: &str,
        stream_prefix: &str,
        subject_prefix: &str,
        database_url: Option<&str>,
    ) -> anyhow::Result<Self> {
        Ok(match kind {
            QueueKind::Jetstream => QueueAccess::JetStream {
                nats_url: nats_url.to_string(),
                stream: format!("{stream_prefix}GAD_JOBS"),
            },
            QueueKind::Rabbitmq => {
                let url = database_url.context("RabbitMQ's drain counts jobs rows: --database-url is required")?;
                let db = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await
                    .context("connecting to the bench database")?;
                let link = RabbitLink::lazy(
                    &rabbit_settings(amqp_url),
                    rabbit_names(stream_prefix, subject_prefix),
                    "bench_pipeline",
                );
                QueueAccess::RabbitMq { link, db }
            }
        })
    }

    /// Closes the RabbitMQ connection (a process that just exits leaves the
    /// broker a "client unexpectedly closed TCP connection").
    pub async fn close(&self) {
        if let QueueAccess::RabbitMq { link, db } = self {
            link.close().await;
            db.close().await;
        }
    }

    /// Taken right before a phase that leaves a backlog.
    pub async fn mark(&self) -> anyhow::Result<u64> {
        match self {
            QueueAccess::JetStream { .. } => Ok(0),
            QueueAccess::RabbitMq { db, .. } => terminal_rows(db).await,
        }
    }

    /// The lane `group`'s backlog left by a phase that got `accepted` jobs
    /// accepted after `mark`.
    pub async fn backlog(&self, group: &str, mark: u64, accepted: u64) -> anyhow::Result<Backlog> {
        Ok(match self {
            QueueAccess::JetStream { nats_url, stream } => {
                let client = async_nats::connect(gad_shared::topology::server_urls(nats_url))
                    .await
                    .context("connecting to NATS")?;
                Backlog::JetStream {
                    js: jetstream::new(client),
                    stream: stream.clone(),
                    consumer: group.to_string(),
                }
            }
            QueueAccess::RabbitMq { link, db } => {
                let names = link.names();
                let mut queues = vec![names.queue(group)];
                queues.extend(link.settings().retry_buckets.iter().map(|b| names.retry(*b)));
                Backlog::RabbitMq {
                    link: link.clone(),
                    channel: link.channel().await.context("connecting to RabbitMQ")?,
                    queues,
                    db: db.clone(),
                    done_at_mark: mark,
                    accepted,
                }
            }
        })
    }
}

impl Backlog {
    /// Where the backlog is, for the messages.
    pub fn name(&self) -> String {
        match self {
            Backlog::JetStream { stream, consumer, .. } => format!("{stream} (consumer {consumer})"),
            Backlog::RabbitMq { queues, .. } => format!("{} and its retry queues", queues[0]),
        }
    }

    /// What [`Depth::unacked`] counts, for the messages.
    pub fn unacked_label(&self) -> &'static str {
        match self {
            Backlog::JetStream { .. } => "unacknowledged",
            Backlog::RabbitMq { .. } => "in flight (no terminal row yet)",
        }
    }

    /// `exact`: count the unacknowledged ones even while messages wait.
    pub async fn depth(&mut self, exact: bool) -> anyhow::Result<Depth> {
        match self {
            Backlog::JetStream { js, stream, consumer } => {
                let s = js.get_stream(stream.as_str()).await.context("get jobs stream")?;
                let info = s.consumer_info(consumer.as_str()).await.context("consumer info")?;
                Ok(Depth {
                    pending: info.num_pending,
                    unacked: Some(info.num_ack_pending as u64),
                })
            }
            Backlog::RabbitMq {
                link,
                channel,
                queues,
                db,
                done_at_mark,
                accepted,
            } => {
                if !channel.status().connected() {
                    *channel = link.channel().await.context("reconnecting to RabbitMQ")?;
                }
                // Rows first when both are wanted: jobs finishing between the
                // two reads then show as in flight rather than vanish.
                let done_first = if exact { Some(terminal_rows(db).await?) } else { None };
                let passive = QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                };
                let mut pending = 0u64;
                for q in queues.iter() {
                    // message_count is the ready messages only (quorum queues too).
                    let queue = channel
                        .queue_declare(q.as_str().into(), passive, FieldTable::default())
                        .await
                        .with_context(|| format!("passive declare of {q}"))?;
                    pending += u64::from(queue.message_count());
                }
                let done = match done_first {
                    Some(done) => done,
                    None if pending == 0 => terminal_rows(db).await?,
                    None => return Ok(Depth { pending, unacked: None }),
                };
                let unfinished = accepted.saturating_sub(done.saturating_sub(*done_at_mark));
                Ok(Depth {
                    pending,
                    unacked: Some(unfinished.saturating_sub(pending)),
                })
            }
        }
    }

    /// Drops what still waits (not what a worker holds).
    pub async fn purge(&mut self) -> anyhow::Result<()> {
        match self {
            Backlog::JetStream { js, stream, .. } => {
                js.get_stream(stream.as_str()).await?.purge().await.context("purge")?;
            }
            Backlog::RabbitMq { channel, queues, .. } => {
                for q in queues.iter() {
                    channel
                        .queue_purge(q.as_str().into(), QueuePurgeOptions::default())
                        .await
                        .with_context(|| format!("purging {q}"))?;
                }
            }
        }
        Ok(())
    }

    /// RabbitMQ's unacknowledged count is inferred from job rows: when it
    /// stays put with nothing waiting, the jobs left are not coming (lost or
    /// never published), and the drain ends with them reported.
    pub fn can_stall(&self) -> bool {
        matches!(self, Backlog::RabbitMq { .. })
    }
}
