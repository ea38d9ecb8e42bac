use anyhow::Context;
use gad_ingress::{Application, IngressSettings};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: IngressSettings = gad_shared::settings::load("ingress").context("loading settings")?;
    let _telemetry =
        gad_shared::telemetry::init_tracing(&settings.telemetry, "gad-ingress").context("starting telemetry")?;
    if let Some(addr) = settings.ingress.metrics_bind {
        gad_shared::telemetry::init_metrics(addr).context("starting the metrics exporter")?;
        gad_shared::metric_names::zero_series(gad_shared::metric_names::Service::Ingress);
    }
    let app = Application::build(settings).await.context("starting ingress")?;
    tracing::info!(addr = %app.local_addr()?, "ingress listening");
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        gad_shared::shutdown::signal().await;
        tracing::info!("shutdown requested; draining");
        signal.cancel();
    });
    app.run_until(shutdown).await.context("serving")?;
    tracing::info!("ingress stopped");
    Ok(())
}
