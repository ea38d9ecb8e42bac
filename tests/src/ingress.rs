//! Starting the ingress of one test.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use gad_ingress::rate_limit::RateLimitSettings;
use gad_ingress::settings::IngressSection;
use gad_ingress::{Application, IngressSettings};
use gad_shared::settings::NatsSettings;

use crate::app::ENVIRONMENT;
use crate::isolation::Isolation;
use crate::tasks::ServiceTasks;

pub fn settings(iso: &Isolation, nats: NatsSettings) -> IngressSettings {
    IngressSettings {
        environment: ENVIRONMENT,
        nats,
        queue: iso.queue.clone(),
        postgres: iso.postgres.clone(),
        redis: iso.redis.clone(),
        auth: iso.auth.clone(),
        telemetry: Default::default(),
        ingress: IngressSection {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_bind: None,
            shutdown_grace: Duration::from_secs(2),
            // Not a developer's broadcaster on the default port; a test that
            // reads the ops view points it at its own.
            broadcaster_stats_url: None,
            // Tests log in and call far more often than a person; the
            // rate-limit tests switch it on with a key prefix of their own.
            rate_limit: RateLimitSettings {
                enabled: false,
                key_prefix: format!("gad:test:{}:rl:", iso.nats.subject_prefix),
                ..Default::default()
            },
            ..IngressSection::default()
        },
    }
}

/// Builds ingress with `nats`, waits up to `ready_within` (if given) until it
/// has bound NATS and loaded revocations, and runs it on a task.
pub async fn start(
    iso: &Isolation,
    nats: NatsSettings,
    ready_within: Option<Duration>,
    tasks: &mut ServiceTasks,
) -> anyhow::Result<SocketAddr> {
    start_with(settings(iso, nats), ready_within, tasks).await
}

/// [`start`] with settings a test edited (trusted proxies, say).
pub async fn start_with(
    settings: IngressSettings,
    ready_within: Option<Duration>,
    tasks: &mut ServiceTasks,
) -> anyhow::Result<SocketAddr> {
    let app = Application::build(settings).await.context("building ingress")?;
    let addr = app.local_addr()?;
    if let Some(within) = ready_within {
        let deadline = tokio::time::Instant::now() + within;
        while !app.ready() {
            if tokio::time::Instant::now() >= deadline {
                bail!("ingress not ready within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    tasks.spawn("ingress", app.run_until(tasks.shutdown()));
    Ok(addr)
}
