//! Starting the workers of one test: every group, test-sized limits.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use gad_workers::settings::{GroupSettings, WorkersSection};
use gad_workers::{Application, WorkersSettings};

use crate::app::ENVIRONMENT;
use crate::isolation::Isolation;
use crate::tasks::ServiceTasks;

pub fn settings(iso: &Isolation) -> WorkersSettings {
    WorkersSettings {
        environment: ENVIRONMENT,
        nats: iso.nats.clone(),
        queue: iso.queue.clone(),
        postgres: iso.postgres.clone(),
        redis: iso.redis.clone(),
        auth: iso.auth.clone(),
        telemetry: Default::default(),
        workers: WorkersSection {
            health_bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_bind: None,
            default_group: GroupSettings {
                concurrency: 4,
                max_ack_pending: 64,
                ..GroupSettings::default()
            },
            backoff_base: Duration::from_millis(50),
            backoff_cap: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(2),
            // The template database is migrated already.
            migrate_on_start: false,
            ..WorkersSection::default()
        },
    }
}

/// Builds the workers (which creates the test's streams and buckets) and runs
/// them on a task; returns their health address.
pub async fn start(iso: &Isolation, tasks: &mut ServiceTasks) -> anyhow::Result<SocketAddr> {
    let app = Application::build(settings(iso)).await.context("building workers")?;
    let health = app.health_addr()?;
    tasks.spawn("workers", app.run_until(tasks.shutdown()));
    Ok(health)
}
