//! Observability plumbing. Prometheus metrics: the process's one recorder, installed once, and its text rendering for
//! `GET /metrics`. The metrics themselves are recorded with the `metrics` macros, one line at
//! the point where each fact happens (api, authority); this module holds no business logic.
//!
//! The recorder is global (the `metrics` facade has one per process), so several `App`s in one
//! process (the in-process tests) share it: their counters add up.
//!
//! Logs: the subscriber, text or JSON ([`log_subscriber`]).

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// Histogram buckets for every `*_duration_seconds`, from a fast answer (1 ms) to a validation
/// or issuance near the default validation timeout (10 s) and beyond.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often the histograms' pending samples are folded in when nobody scrapes (the recorder
/// needs it, or they grow without bound).
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder the first time and returns its handle every time. `None`
/// when another recorder was installed first (a program embedding Mayfly): then `/metrics`
/// is off.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_duration_seconds".into()),
                    DURATION_BUCKETS,
                )
                .ok()?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if let Err(e) = metrics::set_global_recorder(recorder) {
                tracing::warn!(error = %e, "another metrics recorder is installed; /metrics is off");
                return None;
            }
            describe();
            Some(handle)
        })
        .clone()
}

/// The `# HELP` lines.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "mayfly_http_requests_total",
        "HTTP requests answered, by route template and status code"
    );
    describe_histogram!(
        "mayfly_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer an HTTP request, by route template"
    );
    describe_counter!(
        "mayfly_db_commits_total",
        "SQLite write transactions committed (each a durable commit of a batch of writes)"
    );
    describe_counter!(
        "mayfly_db_writes_total",
        "SQLite writes committed; divided by mayfly_db_commits_total, the mean batch size"
    );
    describe_counter!(
        "mayfly_certificates_issued_total",
        "Certificates issued and recorded, by profile"
    );
    describe_histogram!(
        "mayfly_issuance_duration_seconds",
        metrics::Unit::Seconds,
        "Time from a finalize or sign request to the recorded certificate, by profile"
    );
    describe_counter!(
        "mayfly_validations_total",
        "Challenge validations finished, by challenge type and outcome (valid or invalid)"
    );
    describe_counter!(
        "mayfly_nonces_rejected_total",
        "Requests refused with badNonce, by reason"
    );
    describe_histogram!(
        crate::storage::metered::METRIC,
        metrics::Unit::Seconds,
        "Time of one storage operation (a Store method: a query or a transaction), by operation"
    );
    describe_counter!(
        "mayfly_job_runs_total",
        "Periodic job runs on this replica (the holder of the job's lease), by job and outcome"
    );
    describe_counter!(
        "mayfly_renewal_alerts_total",
        "Renewal alerts, by outcome: delivered to the webhook, failed (retried next run), or logged (no webhook)"
    );
    describe_gauge!(
        "mayfly_certificates_in_renewal_window",
        "Valid certificates inside their renewal window and not renewed yet, by profile"
    );
    describe_gauge!(
        "mayfly_certificates_renewal_overdue",
        "Valid certificates whose renewal window passed without a renewal (a client stopped renewing), by profile"
    );
    describe_gauge!(
        "mayfly_crl_age_seconds",
        metrics::Unit::Seconds,
        "Age of the latest CRL this replica signed (now - thisUpdate), by issuer"
    );
}

/// The log subscriber `mayfly serve` installs (and tests use, with their own writer): events
/// at the levels `filter` lets through, as text or one JSON object per line. Both show the
/// fields of the spans an event is in, so the `request` span's `request_id` is on every line
/// logged while a request is served.
pub fn log_subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.with_ansi(ansi).finish()),
        // The whole span list, not only the innermost span: a span opened inside a request
        // must not hide the request's id.
        LogFormat::Json => Box::new(
            builder
                .json()
                .with_current_span(false)
                .with_span_list(true)
                .finish(),
        ),
    }
}
