//! Logging and metrics set-up for the binaries.

use std::net::SocketAddr;

use tracing_subscriber::EnvFilter;

use crate::settings::TelemetrySettings;

/// Installs the global subscriber; JSON lines in production, text locally.
pub fn init_tracing(settings: &TelemetrySettings) {
    let filter = EnvFilter::try_new(&settings.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = if settings.json_logs {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    if result.is_err() {
        eprintln!("tracing subscriber already installed");
    }
}

/// Serves Prometheus text on the internal metrics address (not the public
/// port), every family with HELP and TYPE. Latency histograms have buckets
/// (the exporter's default is a summary, which alert rules cannot aggregate
/// across replicas). Each binary then calls
/// [`crate::metric_names::zero_series`] for its own families, which are not
/// the same for every service.
pub fn init_metrics(addr: SocketAddr) -> Result<(), metrics_exporter_prometheus::BuildError> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

    use crate::metric_names as m;
    let mut builder = PrometheusBuilder::new().with_http_listener(addr);
    for name in [
        m::HTTP_REQUEST_DURATION,
        m::JOB_DURATION,
        m::EMERGENCY_DISPATCH_SECONDS,
        m::JOB_QUEUE_WAIT,
        m::WS_EVENT_LAG,
    ] {
        builder = builder.set_buckets_for_metric(Matcher::Full(name.into()), m::LATENCY_BUCKETS)?;
    }
    builder = builder.set_buckets_for_metric(Matcher::Full(m::JOB_ROW_BATCH_SIZE.into()), m::BATCH_BUCKETS)?;
    builder.install()?;
    m::describe();
    collect_process_metrics();
    Ok(())
}

/// How often `process_*` (CPU seconds, resident memory, open descriptors,
/// threads) is read from /proc.
const PROCESS_METRICS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// A thread of its own, so the figures keep coming when the runtime is the
/// thing that is stuck.
fn collect_process_metrics() {
    let collector = metrics_process::Collector::default();
    collector.describe();
    let started = std::thread::Builder::new()
        .name("process-metrics".into())
        .spawn(move || {
            loop {
                collector.collect();
                std::thread::sleep(PROCESS_METRICS_EVERY);
            }
        });
    if let Err(e) = started {
        tracing::warn!(error = %e, "process metrics not collected");
    }
}
