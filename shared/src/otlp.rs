//! Optional span export over OTLP/HTTP (`telemetry.otlp_endpoint`).
//!
//! A span is exported per hop (ingress request, worker job, broadcaster
//! event) under the ids [`crate::trace_context`] already scopes and puts in
//! the NATS headers, so the collector's tree is the one the logs describe.
//! Spans go through the SDK's batch processor: a bounded queue drained by its
//! own thread, so a slow or absent collector drops spans and never holds up a
//! request or a job.

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_otlp::{SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider};

use crate::trace_context::TraceParent;

static TRACER: OnceLock<SdkTracer> = OnceLock::new();

#[derive(Debug, thiserror::Error)]
#[error("OTLP span exporter: {0}")]
pub struct OtlpError(String);

/// Exports what is still queued when dropped, at the end of `main`.
pub struct OtlpGuard(SdkTracerProvider);

impl Drop for OtlpGuard {
    fn drop(&mut self) {
        if let Err(e) = self.0.shutdown() {
            eprintln!("OTLP: spans not exported at exit: {e}");
        }
    }
}

/// Starts exporting to `endpoint` (the full traces URL) as `service`.
pub fn init(endpoint: &str, timeout: Duration, queue: usize, service: &'static str) -> Result<OtlpGuard, OtlpError> {
    let exporter = SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .with_timeout(timeout)
        .build()
        .map_err(|e| OtlpError(e.to_string()))?;
    let batch = BatchConfigBuilder::default().with_max_queue_size(queue).build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter).with_batch_config(batch).build())
        .with_resource(Resource::builder().with_service_name(service).build())
        .build();
    if TRACER.set(provider.tracer("gad")).is_err() {
        return Err(OtlpError("already initialised in this process".into()));
    }
    Ok(OtlpGuard(provider))
}

/// Whether spans are exported; callers skip building attributes when not.
pub fn enabled() -> bool {
    TRACER.get().is_some()
}

/// The kinds of hop one job's trace is made of.
#[derive(Debug, Clone, Copy)]
pub enum Hop {
    Request,
    Job,
    Delivery,
}

impl Hop {
    fn name(self) -> &'static str {
        match self {
            Hop::Request => "request",
            Hop::Job => "job",
            Hop::Delivery => "deliver event",
        }
    }
    fn kind(self) -> SpanKind {
        match self {
            Hop::Request => SpanKind::Server,
            Hop::Job | Hop::Delivery => SpanKind::Consumer,
        }
    }
}

pub fn attribute(key: &'static str, value: impl Into<Value>) -> KeyValue {
    KeyValue::new(key, value)
}

/// One hop's span, ended (and queued for export) by [`HopSpan::end`]; a
/// no-op when export is off.
pub struct HopSpan(Option<opentelemetry_sdk::trace::Span>);

impl HopSpan {
    /// `own` is the hop's scoped trace context, `parent` what it arrived
    /// with. `attributes` runs only when spans are exported.
    pub fn start(
        hop: Hop,
        own: TraceParent,
        parent: Option<TraceParent>,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Self {
        let Some(tracer) = TRACER.get() else {
            return Self(None);
        };
        let cx = parent.map_or_else(Context::new, |p| {
            Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from_bytes(p.trace_id_bytes()),
                SpanId::from_bytes(p.span_id_bytes()),
                TraceFlags::new(p.flags()),
                true,
                TraceState::default(),
            ))
        });
        let builder = tracer
            .span_builder(hop.name())
            .with_kind(hop.kind())
            .with_trace_id(TraceId::from_bytes(own.trace_id_bytes()))
            .with_span_id(SpanId::from_bytes(own.span_id_bytes()))
            .with_attributes(attributes());
        Self(Some(tracer.build_with_context(builder, &cx)))
    }

    pub fn set(&mut self, key: &'static str, value: impl Into<Value>) {
        if let Some(span) = self.0.as_mut() {
            span.set_attribute(KeyValue::new(key, value));
        }
    }

    /// Ends the span; `error` marks it failed with that description.
    pub fn end(self, error: Option<String>) {
        if let Some(mut span) = self.0 {
            span.set_status(error.map_or(Status::Ok, Status::error));
            span.end();
        }
    }
}
