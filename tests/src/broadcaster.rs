//! Starting the broadcaster of one test.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use gad_broadcaster::settings::{BroadcasterSection, TelegramSection};
use gad_broadcaster::{Application, BroadcasterSettings};

use crate::app::ENVIRONMENT;
use crate::isolation::Isolation;
use crate::tasks::ServiceTasks;

/// `telegram_api`: the fake Bot API to deliver to; `None` leaves Telegram off.
pub fn settings(iso: &Isolation, telegram_api: Option<&str>) -> BroadcasterSettings {
    BroadcasterSettings {
        environment: ENVIRONMENT,
        nats: iso.nats.clone(),
        queue: iso.queue.clone(),
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
        telegram: telegram_api.map(telegram).unwrap_or_default(),
    }
}

/// Telegram against the fake, with every wait shortened so retries and
/// long polls happen within a test's time.
fn telegram(api_url: &str) -> TelegramSection {
    TelegramSection {
        bot_token: Some(format!("{}:TEST", rand::random::<u32>())),
        api_url: api_url.to_string(),
        // The production default: an answer later than this is ambiguous (sent
        // or not?) and retried, and a loaded CI machine can take 2 s to
        // answer; the 429 storm test then sees a send repeated.
        api_timeout: Duration::from_secs(5),
        backoff_base: Duration::from_millis(200),
        backoff_cap: Duration::from_secs(2),
        retry_jitter: Duration::from_millis(200),
        ack_wait: Duration::from_secs(10),
        poll_timeout: Duration::from_secs(1),
        ..TelegramSection::default()
    }
}

/// Builds the broadcaster and runs it on a task; returns its address.
pub async fn start(
    iso: &Isolation,
    telegram_api: Option<&str>,
    tasks: &mut ServiceTasks,
) -> anyhow::Result<SocketAddr> {
    start_with(settings(iso, telegram_api), tasks).await
}

/// [`start`] with settings a test edited (webhook mode, say).
pub async fn start_with(settings: BroadcasterSettings, tasks: &mut ServiceTasks) -> anyhow::Result<SocketAddr> {
    let app = Application::build(settings).await.context("building the broadcaster")?;
    let addr = app.local_addr()?;
    tasks.spawn("broadcaster", app.run_until(tasks.shutdown()));
    Ok(addr)
}
