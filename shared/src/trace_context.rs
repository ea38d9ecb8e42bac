//! W3C trace context: the `traceparent` a request arrives with (or one
//! started at ingress) travels in the job's NATS headers to the worker, and
//! from the worker's events to the broadcaster, so one job is one trace and
//! its trace id is on every log line about it.
//!
//! Only `traceparent` is carried (no `tracestate`): the ids are what the
//! logs join on. Each hop (request, job, event delivery) is one span whose
//! id is the one scoped here; with `telemetry.otlp_endpoint` set, [`crate::otlp`]
//! exports those spans under exactly these ids, so the collector's tree and
//! the logs agree.

use std::fmt;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use rand::RngCore;
use tracing::Instrument;

tokio::task_local! {
    /// The trace of the request or job being handled.
    pub static CURRENT: TraceParent;
}

/// The trace the current task works for, if any.
pub fn current() -> Option<TraceParent> {
    CURRENT.try_with(|t| *t).ok()
}

/// Middleware (inside the request id's): continues the client's trace or
/// starts one, scopes it for the jobs the request submits, and puts the
/// request id and trace id on every log line of the request.
pub async fn layer(req: Request, next: Next) -> Response {
    let parent = req
        .headers()
        .get(crate::envelope::headers::TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse);
    // This hop is a span of its own in the client's trace.
    let trace = parent.map_or_else(TraceParent::root, |p| p.child());
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        request_id = crate::http_error::current_request_id().unwrap_or_default(),
        trace_id = %trace.trace_id(),
    );
    let mut exported = crate::otlp::HopSpan::start(crate::otlp::Hop::Request, trace, parent, || {
        let route = req
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .map_or("unmatched", |p| p.as_str());
        vec![
            crate::otlp::attribute("http.request.method", req.method().to_string()),
            crate::otlp::attribute("http.route", route.to_string()),
        ]
    });
    let response = CURRENT.scope(trace, next.run(req)).instrument(span).await;
    let status = response.status();
    exported.set("http.response.status_code", i64::from(status.as_u16()));
    exported.end(status.is_server_error().then(|| status.to_string()));
    response
}

/// The `traceparent` for what the current hop publishes (a job, an event):
/// the current span is the next hop's parent.
pub fn outgoing() -> Option<TraceParent> {
    current()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

impl TraceParent {
    /// A new trace with this process as its root.
    pub fn root() -> Self {
        let mut rng = rand::rng();
        let mut trace_id = [0u8; 16];
        // All zeros is invalid; a random id is zero with negligible odds,
        // but the spec says to never emit it.
        while trace_id == [0; 16] {
            rng.fill_bytes(&mut trace_id);
        }
        Self {
            trace_id,
            span_id: new_span_id(),
            flags: 0x01,
        }
    }

    /// The same trace, one hop further (a new span id).
    pub fn child(&self) -> Self {
        Self {
            span_id: new_span_id(),
            ..*self
        }
    }

    /// Parses a `traceparent` header. Versions other than `00` are read as
    /// `00` is (the spec's forward compatibility rule); `ff`, all-zero ids
    /// and malformed values give `None` (the caller then starts a trace).
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let mut parts = value.splitn(5, '-');
        let version = hex::<1>(parts.next()?)?;
        let trace_id = hex::<16>(parts.next()?)?;
        let span_id = hex::<8>(parts.next()?)?;
        let flags = hex::<1>(parts.next()?.get(..2)?)?;
        let rest = parts.next();
        let valid = version[0] != 0xff
            && trace_id != [0; 16]
            && span_id != [0; 8]
            && (version[0] != 0 || (rest.is_none() && value.len() == 55));
        valid.then_some(Self {
            trace_id,
            span_id,
            flags: flags[0],
        })
    }

    /// The trace id as the logs show it (32 lowercase hex digits).
    pub fn trace_id(&self) -> String {
        to_hex(&self.trace_id)
    }

    pub(crate) fn trace_id_bytes(&self) -> [u8; 16] {
        self.trace_id
    }

    pub(crate) fn span_id_bytes(&self) -> [u8; 8] {
        self.span_id
    }

    pub(crate) fn flags(&self) -> u8 {
        self.flags
    }
}

/// The header value: `00-<trace id>-<span id>-<flags>`.
impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            to_hex(&self.trace_id),
            to_hex(&self.span_id),
            self.flags
        )
    }
}

fn new_span_id() -> [u8; 8] {
    let mut id = [0u8; 8];
    while id == [0; 8] {
        rand::rng().fill_bytes(&mut id);
    }
    id
}

/// Exactly `N` bytes of lowercase hex (the spec forbids upper case).
fn hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::TraceParent;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_specs_example_round_trips_and_a_child_keeps_the_trace() {
        let t = TraceParent::parse(EXAMPLE);
        assert_eq!(t.map(|t| t.to_string()).as_deref(), Some(EXAMPLE));
        let child = t.map(|t| t.child());
        assert_eq!(
            child.map(|c| c.trace_id()).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_ne!(child.map(|c| c.to_string()).as_deref(), Some(EXAMPLE));
    }

    #[test]
    fn malformed_zero_and_forbidden_values_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
        // A later version may append fields.
        assert!(TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra").is_some());
    }

    #[test]
    fn a_root_is_well_formed() {
        let root = TraceParent::root();
        assert_eq!(TraceParent::parse(&root.to_string()), Some(root));
    }
}
