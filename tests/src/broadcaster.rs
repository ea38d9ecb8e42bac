//! Starting the broadcaster of one test.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use gad_broadcaster::settings::BroadcasterSection;
use gad_broadcaster::{Application, BroadcasterSettings};

use crate::app::ENVIRONMENT;
use crate::isolation::Isolation;
use crate::tasks::ServiceTasks;

pub fn settings(iso: &Isolation) -> BroadcasterSettings {
    BroadcasterSettings {
        environment: ENVIRONMENT,
        nats: iso.nats.clone(),
        postgres: iso.postgres.clone(),
        redis: iso.redis.clone(),
        auth: iso.auth.clone(),
        telemetry: Default::default(),
        broadcaster: BroadcasterSection {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_bind: None,
            shutdown_grace: Duration::from_secs(2),
            ..BroadcasterSection::default()
        },
    }
}

/// Builds the broadcaster and runs it on a task; returns its address.
pub async fn start(iso: &Isolation, tasks: &mut ServiceTasks) -> anyhow::Result<SocketAddr> {
    let app = Application::build(settings(iso))
        .await
        .context("building the broadcaster")?;
    let addr = app.local_addr()?;
    tasks.spawn("broadcaster", app.run_until(tasks.shutdown()));
    Ok(addr)
}
