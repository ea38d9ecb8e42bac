use anyhow::Context;
use gad_broadcaster::{Application, BroadcasterSettings};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: BroadcasterSettings = gad_shared::settings::load("broadcaster").context("loading settings")?;
    let _telemetry =
        gad_shared::telemetry::init_tracing(&settings.telemetry, "gad-broadcaster").context("starting telemetry")?;
    if let Some(addr) = settings.broadcaster.metrics_bind {
        gad_shared::telemetry::init_metrics(addr).context("starting the metrics exporter")?;
        gad_shared::metric_names::zero_series(gad_shared::metric_names::Service::Broadcaster);
    }
    let app = Application::build(settings).await.context("starting broadcaster")?;
    tracing::info!(addr = %app.local_addr()?, "broadcaster listening");
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        gad_shared::shutdown::signal().await;
        tracing::info!("shutdown requested; closing connections");
        signal.cancel();
    });
    app.run_until(shutdown).await.context("serving")?;
    tracing::info!("broadcaster stopped");
    Ok(())
}
