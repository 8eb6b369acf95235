//! What the daemon counts for Prometheus: the one place that names each metric and its
//! labels, so every call site in ingest, notify and web is one line and no name is spelt
//! twice.
//!
//! The `metrics` facade records into whatever recorder the process installed; until one is
//! installed every call is a no-op (the CLI's one-shot commands pay nothing). The web
//! server installs the Prometheus recorder once per process ([`install`]) before the
//! collectors start, and `GET /metrics` renders it (`src/web/metrics.rs`).
//!
//! Counters and the pass histogram are what this process saw since it started, as
//! Prometheus expects of counters; the gauges that the database knows better
//! ([`LAST_SUCCESS`], [`OUTBOX_DEPTH`]) are set from it when scraped, so `mailintake serve`
//! beside a daemon in another process shows them too.

use std::sync::OnceLock;
use std::time::Instant;

use ::metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// `mailintake_messages_total{collector,outcome}`: messages a pass read, by what became of
/// them (`accepted`, `skipped`, `quarantined`, `duplicate`).
pub const MESSAGES: &str = "mailintake_messages_total";
/// `mailintake_pass_duration_seconds{collector}`: a histogram of collector passes,
/// failed ones included.
pub const PASS_DURATION: &str = "mailintake_pass_duration_seconds";
/// `mailintake_last_success_timestamp_seconds{collector}`: Unix time of the last pass that
/// succeeded (for an alert on `time() - x > ...`).
pub const LAST_SUCCESS: &str = "mailintake_last_success_timestamp_seconds";
/// `mailintake_outbox_depth`: notifications queued and not yet sent or given up.
pub const OUTBOX_DEPTH: &str = "mailintake_outbox_depth";
/// `mailintake_notifications_total{status}`: send attempts by outcome (`sent`, `retrying`,
/// `failed`).
pub const NOTIFICATIONS: &str = "mailintake_notifications_total";
/// `mailintake_http_requests_total{route,status}`: requests by matched route template.
pub const HTTP_REQUESTS: &str = "mailintake_http_requests_total";

/// The `route` label of a request that matched no route: one value, whatever the path, so
/// a scanner probing random paths cannot grow the label set without bound.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Pass durations from a quick Maildir pass to a slow IMAP backlog, in seconds.
const PASS_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
];

/// Installs the Prometheus recorder, once per process, and returns its handle; later calls
/// return the same handle.
pub fn install() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(PASS_DURATION.into()), &PASS_BUCKETS)
            .expect("the pass buckets are not empty");
        let handle = match builder.install_recorder() {
            Ok(handle) => handle,
            Err(e) => {
                // NOTE: only another recorder installed first gets here (the crate installs
                // none elsewhere); render an empty registry rather than refuse to serve.
                tracing::warn!(error = %e, "metrics are not recorded: another recorder is installed");
                PrometheusBuilder::new().build_recorder().handle()
            }
        };
        describe();
        handle
    })
}

fn describe() {
    describe_counter!(MESSAGES, "Messages read by collector passes, by outcome.");
    describe_histogram!(
        PASS_DURATION,
        ::metrics::Unit::Seconds,
        "Duration of collector passes."
    );
    describe_gauge!(
        LAST_SUCCESS,
        ::metrics::Unit::Seconds,
        "Unix time of the collector's last successful pass."
    );
    describe_gauge!(OUTBOX_DEPTH, "Notifications queued for sending.");
    describe_counter!(NOTIFICATIONS, "Notification send attempts, by outcome.");
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests, by route template and status."
    );
}

/// Counts what a pass did with its messages (`report` of a finished or failed pass).
pub fn messages(report: &crate::ingest::CollectReport) {
    let collector = report.collector.clone();
    for (outcome, count) in [
        ("accepted", report.accepted),
        ("skipped", report.skipped),
        ("quarantined", report.quarantined),
        ("duplicate", report.duplicates),
    ] {
        counter!(MESSAGES, "collector" => collector.clone(), "outcome" => outcome)
            .increment(count as u64);
    }
}

/// Times one collector pass: the duration is observed when the timer is dropped, so a pass
/// that returns early on an error is timed too.
pub struct PassTimer {
    collector: String,
    started: Instant,
}

impl PassTimer {
    /// Starts timing a pass of `collector`.
    pub fn start(collector: &str) -> PassTimer {
        PassTimer {
            collector: collector.to_string(),
            started: Instant::now(),
        }
    }
}

impl Drop for PassTimer {
    fn drop(&mut self) {
        histogram!(PASS_DURATION, "collector" => self.collector.clone())
            .record(self.started.elapsed().as_secs_f64());
    }
}

/// Sets a collector's last success time (Unix seconds).
pub fn last_success(collector: &str, at: chrono::DateTime<chrono::Utc>) {
    gauge!(LAST_SUCCESS, "collector" => collector.to_string()).set(at.timestamp() as f64);
}

/// Sets how many notifications are queued.
pub fn outbox_depth(queued: i64) {
    gauge!(OUTBOX_DEPTH).set(queued as f64);
}

/// Counts one notification send attempt ending in `status`.
pub fn notification(status: &'static str) {
    counter!(NOTIFICATIONS, "status" => status).increment(1);
}

/// Counts one HTTP request answered with `status` on `route` (a route template such as
/// `/records/{id}`, or [`UNMATCHED_ROUTE`]).
pub fn http_request(route: &str, status: u16) {
    counter!(HTTP_REQUESTS, "route" => route.to_string(), "status" => status.to_string())
        .increment(1);
}
