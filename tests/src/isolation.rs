//! What keeps one test apart from every other test sharing the servers: its
//! own database, NATS stream and subject prefixes, and JWT secret.

use std::time::Duration;

use gad_shared::queue::{QueueSettings, RabbitSettings};
use gad_shared::settings::{AuthSettings, NatsSettings, PostgresSettings, RedisSettings};
use rand::Rng;
use rand::distr::Alphanumeric;

use crate::database::{self, TestDatabase};
use crate::services::ServiceUrls;

/// The settings sections every service of one test shares.
#[derive(Debug, Clone)]
pub struct Isolation {
    pub database: TestDatabase,
    pub postgres: PostgresSettings,
    pub nats: NatsSettings,
    /// JetStream unless the test asked for RabbitMQ; the RabbitMQ names
    /// carry the NATS stream prefix.
    pub queue: QueueSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
}

/// Test streams are tiny; JetStream reserves `max_bytes` of storage for each
/// stream, so the production defaults (1 GiB) would exhaust the server's
/// storage with a few tests running at once.
const STREAM_BYTES: i64 = 32 << 20;

impl Isolation {
    /// Creates the test's database (from the template) and picks its prefixes.
    pub async fn create(urls: &ServiceUrls) -> anyhow::Result<Self> {
        let database = database::create_test_database(urls).await?;
        let tag: u32 = rand::rng().random();
        let nats = NatsSettings {
            url: urls.nats.clone(),
            stream_prefix: format!("T{tag:08x}_"),
            subject_prefix: format!("t{tag:08x}"),
            connect_timeout: Duration::from_secs(2),
            publish_timeout: Duration::from_secs(2),
            jobs_max_bytes: STREAM_BYTES,
            events_max_bytes: STREAM_BYTES,
            dlq_max_bytes: STREAM_BYTES,
            ..NatsSettings::default()
        };
        let postgres = PostgresSettings {
            url: urls.postgres_db(&database.name),
            pool_size: 4,
            ..PostgresSettings::default()
        };
        let redis = RedisSettings {
            url: urls.redis.clone(),
            ..RedisSettings::default()
        };
        let secret: String = rand::rng().sample_iter(Alphanumeric).take(48).map(char::from).collect();
        let auth = AuthSettings {
            jwt_secret: secret,
            issuer: Some("gad-e2e".into()),
            token_ttl: None,
        };
        let queue = QueueSettings {
            rabbitmq: RabbitSettings {
                url: urls.amqp.clone(),
                // Test-sized waits: the retry policy's delays are short too.
                retry_buckets: [100, 500, 2_000].into_iter().map(Duration::from_millis).collect(),
                ..RabbitSettings::default()
            },
            ..QueueSettings::default()
        };
        Ok(Self {
            database,
            postgres,
            nats,
            queue,
            redis,
            auth,
        })
    }
}
