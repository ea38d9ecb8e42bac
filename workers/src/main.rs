use anyhow::Context;
use gad_workers::{Application, WorkersSettings};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: WorkersSettings = gad_shared::settings::load("workers").context("loading settings")?;
    let _telemetry =
        gad_shared::telemetry::init_tracing(&settings.telemetry, "gad-workers").context("starting telemetry")?;
    if let Some(addr) = settings.workers.metrics_bind {
        gad_shared::telemetry::init_metrics(addr).context("starting the metrics exporter")?;
        gad_shared::metric_names::zero_series(gad_shared::metric_names::Service::Workers);
    }
    let app = Application::build(settings).await.context("starting workers")?;
    tracing::info!(health = %app.health_addr()?, "workers running");
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        gad_shared::shutdown::signal().await;
        tracing::info!("shutdown requested; finishing in-flight jobs");
        signal.cancel();
    });
    app.run_until(shutdown).await.context("running")?;
    tracing::info!("workers stopped");
    Ok(())
}
