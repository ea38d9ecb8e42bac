//! Every metric the services export, named in one place with its help text.
//! The §6.5 names are exact (existing alert rules use them); the rest carry
//! the `gad_` prefix. Labels come from bounded sets only: route templates,
//! job kinds and groups from their tables, fixed reason and outcome words.
//! `deploy/prometheus/` (alert rules, dashboards) refers to these names, and
//! a test checks each name a rule uses against a live scrape.

/// (name, help) of one family.
type Family = (&'static str, &'static str);

// --- §6.5 ---------------------------------------------------------------
/// Counter; method, route (template), status.
pub const HTTP_REQUESTS: &str = "http_requests_total";
/// Histogram; method, route (template), status.
pub const HTTP_REQUEST_DURATION: &str = "http_request_duration_seconds";
/// Gauge; open WebSocket connections of this node.
pub const WS_CONNECTIONS_ACTIVE: &str = "websocket_connections_active";
/// Counter; reason.
pub const WS_BROADCAST_ERRORS: &str = "websocket_broadcast_errors_total";
/// Counter; kind, lane.
pub const JOBS_SUBMITTED: &str = "jobs_submitted_total";
/// Counter; kind, status (the job's final status).
pub const JOBS_FINISHED: &str = "jobs_finished_total";
/// Histogram; kind, status (`retried`, `skipped` for runs that did not end the job).
pub const JOB_DURATION: &str = "job_duration_seconds";
/// Gauge; lane (worker group): messages not yet delivered.
pub const JOB_QUEUE_DEPTH: &str = "job_queue_depth";
/// Counter; outcome (assigned, no_efectivo_available, error).
pub const EMERGENCY_DISPATCH: &str = "emergency_dispatch_total";
/// Histogram; outcome.
pub const EMERGENCY_DISPATCH_SECONDS: &str = "emergency_dispatch_seconds";
/// Gauge; channel, priority: notifications not yet delivered (pending or sending).
pub const NOTIFICATIONS_PENDING: &str = "notifications_pending";
/// Gauge; channel, priority: age of the oldest undelivered notification.
pub const NOTIFICATION_OLDEST_UNACKED: &str = "notification_oldest_unacked_seconds";
/// Counter; code: `429`, `403`, `400`, `transient` (network, 5xx, bad body)
/// or `permanent` ([`TELEGRAM_ERROR_CODES`]).
pub const TELEGRAM_API_ERRORS: &str = "telegram_api_errors_total";
/// Counter; connections closed 4000 as slow consumers.
pub const WS_SLOW_CONSUMER_CLOSES: &str = "ws_slow_consumer_closes_total";
/// Counter; outcome (ok, resync, slow_consumer, stream_error).
pub const WS_RESUME: &str = "ws_resume_total";

// --- ingress ------------------------------------------------------------
/// Counter; reason (`queue_timeout`, `hard`).
pub const HTTP_SHED: &str = "gad_http_shed_total";
/// Counter; group (route group of §6.4).
pub const HTTP_RATE_LIMITED: &str = "gad_http_rate_limited_total";
/// Gauge: requests being handled by this ingress (the saturation signal
/// beside the shedding limits).
pub const HTTP_IN_FLIGHT: &str = "gad_http_requests_in_flight";
/// Counter; lane: submissions refused by admission control.
pub const JOBS_REFUSED: &str = "gad_jobs_refused_total";

// --- workers ------------------------------------------------------------
/// Counter; kind: deliveries that started to run.
pub const JOBS_STARTED: &str = "gad_jobs_started_total";
/// Counter; kind.
pub const JOBS_SUCCEEDED: &str = "gad_jobs_succeeded_total";
/// Counter; kind.
pub const JOBS_FAILED: &str = "gad_jobs_failed_total";
/// Counter; kind: runs that ended in a retry.
pub const JOBS_RETRIED: &str = "gad_jobs_retried_total";
/// Counter; kind: jobs dead-lettered.
pub const JOBS_DEAD: &str = "gad_jobs_dead_total";
/// Gauge; kind.
pub const JOBS_IN_FLIGHT: &str = "gad_jobs_in_flight";
/// Gauge; lane: delivered, not yet acknowledged.
pub const CONSUMER_ACK_PENDING: &str = "gad_consumer_ack_pending";
/// Gauge; dependency: 0 closed, 1 open, 2 half-open.
pub const BREAKER_STATE: &str = "gad_breaker_state";
/// Counter; dependency.
pub const BREAKER_OPENED: &str = "gad_breaker_opened_total";
/// Histogram: job rows written per batch.
pub const JOB_ROW_BATCH_SIZE: &str = "gad_job_row_batch_size";
/// Counter; table.
pub const RETENTION_PURGED_ROWS: &str = "gad_retention_purged_rows_total";

// --- broadcaster --------------------------------------------------------
/// Counter; reason (rate, capacity): connections closed 1013 at once.
pub const WS_CONNECTIONS_REFUSED: &str = "gad_ws_connections_refused_total";
/// Counter: frames written to WebSocket clients.
pub const WS_FRAMES_SENT: &str = "gad_ws_frames_sent_total";
/// Counter: events this node fanned out.
pub const WS_BROADCASTS: &str = "gad_ws_broadcasts_total";
/// Counter; outcome (sent, retried, undeliverable, failed): Telegram deliveries.
pub const TELEGRAM_NOTIFICATIONS: &str = "gad_telegram_notifications_total";
/// Histogram: an event's timestamp (its commit, for outbox events) to this
/// node's fan-out; with the job's own times, finish→delivered.
pub const WS_EVENT_LAG: &str = "gad_ws_event_lag_seconds";

// --- every service --------------------------------------------------------
/// Histogram; kind: submit to first pickup by a worker (the queue's cost).
pub const JOB_QUEUE_WAIT: &str = "gad_job_queue_wait_seconds";
/// Gauge; pool (main, knn), state (idle, in_use).
pub const DB_POOL_CONNECTIONS: &str = "gad_db_pool_connections";
/// Gauge; pool: the pool's maximum size.
pub const DB_POOL_MAX: &str = "gad_db_pool_max_connections";
/// Histogram: seconds a query waited for a pooled connection, every pool of
/// the process (sqlx reports the wait without saying which pool).
pub const DB_POOL_ACQUIRE_WAIT: &str = "gad_db_pool_acquire_wait_seconds";
/// Counter; cache (stats), result (hit, miss, bypass, unavailable).
pub const CACHE_REQUESTS: &str = "gad_cache_requests_total";
/// Counter; outcome (forwarded, duplicate, unroutable): messages the AMQP
/// bridge moved from RabbitMQ into `GAD_JOBS`; retried: publishes JetStream
/// did not take (the message is published again).
pub const AMQP_BRIDGE_MESSAGES: &str = "gad_amqp_bridge_messages_total";

const COUNTERS: &[Family] = &[
    (
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route template and status",
    ),
    (WS_BROADCAST_ERRORS, "Frames a connection could not take, by reason"),
    (JOBS_SUBMITTED, "Jobs accepted onto the queue, by kind and lane"),
    (JOBS_FINISHED, "Jobs that reached a final status, by kind and status"),
    (EMERGENCY_DISPATCH, "Emergency dispatches, by outcome"),
    (TELEGRAM_API_ERRORS, "Bot API calls that failed, by status code"),
    (
        WS_SLOW_CONSUMER_CLOSES,
        "WebSocket connections closed 4000 as slow consumers",
    ),
    (WS_RESUME, "WebSocket resumes, by outcome"),
    (HTTP_SHED, "Requests shed by the concurrency limits, by reason"),
    (HTTP_RATE_LIMITED, "Requests answered 429, by route group"),
    (JOBS_REFUSED, "Submissions refused by admission control, by lane"),
    (JOBS_STARTED, "Job runs started, by kind"),
    (JOBS_SUCCEEDED, "Jobs that succeeded, by kind"),
    (JOBS_FAILED, "Jobs that failed for good, by kind"),
    (JOBS_RETRIED, "Job runs that ended in a retry, by kind"),
    (JOBS_DEAD, "Jobs dead-lettered, by kind"),
    (BREAKER_OPENED, "Times a circuit breaker opened, by dependency"),
    (RETENTION_PURGED_ROWS, "Rows deleted by the retention purge, by table"),
    (
        WS_CONNECTIONS_REFUSED,
        "WebSocket connections refused with 1013, by reason",
    ),
    (CACHE_REQUESTS, "Cache look-ups, by cache and result"),
    (
        AMQP_BRIDGE_MESSAGES,
        "Messages the AMQP bridge moved into the job stream, and publishes it retried, by outcome",
    ),
    (WS_FRAMES_SENT, "Frames written to WebSocket clients"),
    (WS_BROADCASTS, "Events this node fanned out to its connections"),
    (
        TELEGRAM_NOTIFICATIONS,
        "Telegram notification delivery attempts, by outcome",
    ),
];

const GAUGES: &[Family] = &[
    (WS_CONNECTIONS_ACTIVE, "Open WebSocket connections on this node"),
    (JOB_QUEUE_DEPTH, "Jobs waiting for delivery, by lane (worker group)"),
    (
        NOTIFICATIONS_PENDING,
        "Notifications not yet delivered, by channel and priority",
    ),
    (
        NOTIFICATION_OLDEST_UNACKED,
        "Age in seconds of the oldest undelivered notification, by channel and priority",
    ),
    (JOBS_IN_FLIGHT, "Jobs running now in this process, by kind"),
    (CONSUMER_ACK_PENDING, "Jobs delivered and not yet acknowledged, by lane"),
    (
        BREAKER_STATE,
        "Circuit breaker state by dependency: 0 closed, 1 open, 2 half-open",
    ),
    (
        DB_POOL_CONNECTIONS,
        "PostgreSQL pool connections, by pool and state (idle, in_use)",
    ),
    (DB_POOL_MAX, "PostgreSQL pool maximum size, by pool"),
    (HTTP_IN_FLIGHT, "HTTP requests being handled by this ingress"),
];

const HISTOGRAMS: &[Family] = &[
    (
        HTTP_REQUEST_DURATION,
        "HTTP request duration in seconds, by method, route template and status",
    ),
    (JOB_DURATION, "Job run duration in seconds, by kind and status"),
    (
        EMERGENCY_DISPATCH_SECONDS,
        "Emergency dispatch duration in seconds, by outcome",
    ),
    (JOB_ROW_BATCH_SIZE, "Job rows written per database batch"),
    (
        JOB_QUEUE_WAIT,
        "Seconds from a job's submission to its first pickup, by kind",
    ),
    (WS_EVENT_LAG, "Seconds from an event's timestamp to this node's fan-out"),
    (
        DB_POOL_ACQUIRE_WAIT,
        "Seconds spent waiting for a pooled PostgreSQL connection",
    ),
];

/// Buckets of every latency histogram, in seconds: fine around the SLO
/// (p95 ≤ 150 ms, p99 ≤ 400 ms) and wide enough for a job's deadline.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.4, 0.6, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Buckets of the row batch size histogram.
pub const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Gives every family its HELP line (the exporter writes HELP only for
/// described families).
pub fn describe() {
    for (name, help) in COUNTERS {
        metrics::describe_counter!(*name, *help);
    }
    for (name, help) in GAUGES {
        metrics::describe_gauge!(*name, *help);
    }
    for (name, help) in HISTOGRAMS {
        metrics::describe_histogram!(*name, *help);
    }
}

/// The service whose families [`zero_series`] touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Ingress,
    Workers,
    Broadcaster,
}

/// The codes [`TELEGRAM_API_ERRORS`] is labelled with.
pub const TELEGRAM_ERROR_CODES: &[&str] = &["429", "403", "400", "transient", "permanent"];

/// The kind label of a job whose subject names no known kind.
pub const UNKNOWN_KIND: &str = "unknown";

/// Touches, at 0, the counter series of `service` whose label values are
/// known up front, so they are in the first scrape: a counter that appears
/// only at its first increment is invisible to `rate()`/`increase()` for
/// that first event (its first sample is already 1), and an alert rule on
/// it could not be checked against a scrape (tests/tests/e2e/alert_rules.rs).
/// The broadcaster's connection gauge is touched (+0) for the same reason.
/// Series with open-ended label combinations (method × route × status) and
/// gauges the service sets itself at start are left alone. Each binary calls
/// it once, for itself, after the recorder is installed.
pub fn zero_series(service: Service) {
    use crate::job::{GROUPS, KINDS};
    let zero = |name: &'static str, label: &'static str, values: &[&'static str]| {
        for value in values {
            metrics::counter!(name, label => *value).increment(0);
        }
    };
    let kinds = || KINDS.iter().map(|k| k.name).chain([UNKNOWN_KIND]);
    match service {
        Service::Ingress => {
            zero(HTTP_SHED, "reason", &["queue_timeout", "hard"]);
            zero(JOBS_REFUSED, "lane", GROUPS);
        }
        Service::Workers => {
            for kind in kinds() {
                for name in [JOBS_DEAD, JOBS_FAILED, JOBS_RETRIED] {
                    metrics::counter!(name, "kind" => kind).increment(0);
                }
            }
            zero(BREAKER_OPENED, "dependency", &["postgres"]);
            zero(
                EMERGENCY_DISPATCH,
                "outcome",
                &["assigned", "no_efectivo_available", "error"],
            );
        }
        Service::Broadcaster => {
            metrics::counter!(WS_SLOW_CONSUMER_CLOSES).increment(0);
            metrics::counter!(WS_FRAMES_SENT).increment(0);
            metrics::counter!(WS_BROADCASTS).increment(0);
            zero(
                TELEGRAM_NOTIFICATIONS,
                "outcome",
                &["sent", "retried", "undeliverable", "failed"],
            );
            metrics::gauge!(WS_CONNECTIONS_ACTIVE).increment(0.0);
            zero(WS_BROADCAST_ERRORS, "reason", &["slow_consumer"]);
            zero(TELEGRAM_API_ERRORS, "code", TELEGRAM_ERROR_CODES);
            zero(WS_RESUME, "outcome", &["ok", "resync", "slow_consumer", "stream_error"]);
            zero(WS_CONNECTIONS_REFUSED, "reason", &["rate", "capacity"]);
        }
    }
}

/// Every family name, for tests and the alert-rule check.
pub fn all() -> impl Iterator<Item = &'static str> {
    COUNTERS.iter().chain(GAUGES).chain(HISTOGRAMS).map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    /// The names §6.5 fixes; everything else is ours and prefixed.
    const SPEC: [&str; 15] = [
        super::HTTP_REQUESTS,
        super::HTTP_REQUEST_DURATION,
        super::WS_CONNECTIONS_ACTIVE,
        super::WS_BROADCAST_ERRORS,
        super::JOBS_SUBMITTED,
        super::JOBS_FINISHED,
        super::JOB_DURATION,
        super::JOB_QUEUE_DEPTH,
        super::EMERGENCY_DISPATCH,
        super::EMERGENCY_DISPATCH_SECONDS,
        super::NOTIFICATIONS_PENDING,
        super::NOTIFICATION_OLDEST_UNACKED,
        super::TELEGRAM_API_ERRORS,
        super::WS_SLOW_CONSUMER_CLOSES,
        super::WS_RESUME,
    ];

    /// Records the family name of every series registered through it.
    #[derive(Default)]
    struct Names(std::sync::Mutex<Vec<String>>);

    impl Names {
        fn note(&self, key: &metrics::Key) {
            self.0.lock().unwrap().push(key.name().to_string());
        }
    }

    impl metrics::Recorder for Names {
        fn describe_counter(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
        fn describe_gauge(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
        fn describe_histogram(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
        fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
            self.note(key);
            metrics::Counter::noop()
        }
        fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
            self.note(key);
            metrics::Gauge::noop()
        }
        fn register_histogram(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Histogram {
            self.note(key);
            metrics::Histogram::noop()
        }
    }

    fn zeroed(service: super::Service) -> std::collections::BTreeSet<String> {
        let names = Names::default();
        metrics::with_local_recorder(&names, || super::zero_series(service));
        names.0.into_inner().unwrap().into_iter().collect()
    }

    #[test]
    fn zero_series_touch_declared_families_of_one_service_each() {
        use super::Service::{Broadcaster, Ingress, Workers};
        let declared: std::collections::HashSet<_> = super::all().collect();
        let [i, w, b] = [Ingress, Workers, Broadcaster].map(zeroed);
        for name in i.iter().chain(&w).chain(&b) {
            assert!(declared.contains(name.as_str()), "{name} is not declared");
        }
        assert!(
            i.is_disjoint(&w) && i.is_disjoint(&b) && w.is_disjoint(&b),
            "{i:?} {w:?} {b:?}"
        );
        assert!(w.contains(super::JOBS_DEAD) && w.contains(super::BREAKER_OPENED));
        assert!(b.contains(super::TELEGRAM_API_ERRORS) && b.contains(super::WS_SLOW_CONSUMER_CLOSES));
        assert!(i.contains(super::HTTP_SHED) && i.contains(super::JOBS_REFUSED));
    }

    #[test]
    fn every_family_is_described_once_and_ours_carry_the_prefix() {
        let mut seen = std::collections::HashSet::new();
        for name in super::all() {
            assert!(seen.insert(name), "{name} twice");
            assert!(name.starts_with("gad_") || SPEC.contains(&name), "{name}");
        }
        for name in SPEC {
            assert!(seen.contains(name), "{name} has no help text");
        }
    }
}
