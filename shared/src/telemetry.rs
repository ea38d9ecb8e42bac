//! Logging, span export and metrics set-up for the binaries.

use std::net::SocketAddr;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

use crate::otlp::{self, OtlpError, OtlpGuard};
use crate::settings::TelemetrySettings;

/// Held by `main` until exit: flushes exported spans when dropped.
#[must_use]
pub struct TelemetryGuard {
    _otlp: Option<OtlpGuard>,
}

/// Installs the global subscriber (JSON lines in production, text locally),
/// the pool acquire-wait histogram, and span export when an OTLP endpoint is
/// configured. `service` is the name spans are exported under.
pub fn init_tracing(settings: &TelemetrySettings, service: &'static str) -> Result<TelemetryGuard, OtlpError> {
    let filter = EnvFilter::try_new(&settings.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = if settings.json_logs {
        tracing_subscriber::fmt::layer().json().flatten_event(true).boxed()
    } else {
        tracing_subscriber::fmt::layer().boxed()
    };
    let acquires = Targets::new().with_target(SQLX_ACQUIRE_TARGET, Level::TRACE);
    let installed = tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(PoolAcquireWait.with_filter(acquires))
        .try_init();
    if installed.is_err() {
        eprintln!("tracing subscriber already installed");
    }
    let otlp = match settings.otlp_endpoint.as_deref() {
        Some(endpoint) => Some(otlp::init(
            endpoint,
            settings.otlp_timeout,
            settings.otlp_queue,
            service,
        )?),
        None => None,
    };
    Ok(TelemetryGuard { _otlp: otlp })
}

/// Where sqlx reports each pool acquire with its wait (`acquired_after_secs`).
const SQLX_ACQUIRE_TARGET: &str = "sqlx::pool::acquire";

/// Turns sqlx's acquire events into a histogram: sqlx has no hook around
/// `acquire`, and timing our own call sites would miss every query that
/// borrows a connection implicitly (`.execute(&pool)`).
struct PoolAcquireWait;

impl<S: Subscriber> Layer<S> for PoolAcquireWait {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut wait = AcquiredAfter(None);
        event.record(&mut wait);
        if let Some(seconds) = wait.0 {
            metrics::histogram!(crate::metric_names::DB_POOL_ACQUIRE_WAIT).record(seconds);
        }
    }
}

struct AcquiredAfter(Option<f64>);

impl Visit for AcquiredAfter {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "acquired_after_secs" {
            self.0 = Some(value);
        }
    }
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
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
        m::DB_POOL_ACQUIRE_WAIT,
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
