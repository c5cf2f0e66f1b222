//! The figures of one run, as text for people and JSON for scripts.
//!
//! A run with errors says so on its first line and in `"ok": false`; its throughput counts
//! issued certificates only.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use super::probe::Sample;
use super::stats::{Percentiles, Stats, Step};
use super::{Options, Stop};

/// CPU time and memory of a process over a run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProcessFigures {
    pub cpu: Duration,
    /// RSS when the run started (the server's idle RSS, after start-up).
    pub rss_before_kib: u64,
    /// Peak RSS (`VmHWM`) when the run ended, i.e. over the process's whole life.
    pub peak_rss_kib: u64,
}

impl ProcessFigures {
    fn between(before: Sample, after: Sample) -> Self {
        ProcessFigures {
            cpu: after.cpu.saturating_sub(before.cpu),
            rss_before_kib: before.rss_kib,
            peak_rss_kib: after.peak_rss_kib,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Report {
    pub label: String,
    pub directory_url: String,
    pub concurrency: usize,
    pub names_per_order: usize,
    pub stop: String,
    pub wall: Duration,
    pub certificates: u64,
    pub verified: u64,
    pub errors: BTreeMap<String, u64>,
    pub error_examples: BTreeMap<String, String>,
    pub requests: u64,
    pub polls: u64,
    pub bad_nonce_retries: u64,
    pub latency: Vec<(Step, Percentiles)>,
    pub server: Option<ProcessFigures>,
    pub generator: ProcessFigures,
}

impl Report {
    pub fn new(
        options: &Options,
        stats: &mut Stats,
        wall: Duration,
        server: Option<(Sample, Sample)>,
        generator: (Sample, Sample),
    ) -> Self {
        Report {
            label: options.label.clone(),
            directory_url: options.directory_url.clone(),
            concurrency: options.concurrency,
            names_per_order: options.names_per_order,
            stop: match options.stop {
                Stop::Orders(orders) => format!("{orders} orders"),
                Stop::Duration(duration) => format!("{} s", duration.as_secs_f64()),
            },
            wall,
            certificates: stats.certificates,
            verified: stats.verified,
            errors: stats.errors.clone(),
            error_examples: stats.error_examples.clone(),
            requests: stats.requests,
            polls: stats.polls,
            bad_nonce_retries: stats.bad_nonce_retries,
            latency: Step::ALL
                .iter()
                .map(|&step| (step, stats.percentiles(step)))
                .collect(),
            server: server.map(|(before, after)| ProcessFigures::between(before, after)),
            generator: ProcessFigures::between(generator.0, generator.1),
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// No errors and at least one certificate.
    pub fn ok(&self) -> bool {
        self.error_count() == 0 && self.certificates > 0
    }

    pub fn certificates_per_second(&self) -> f64 {
        self.certificates as f64 / self.wall.as_secs_f64().max(f64::EPSILON)
    }

    /// CPU milliseconds per issued certificate (`None` if none was issued).
    fn per_certificate(&self, cpu: Duration) -> Option<f64> {
        (self.certificates > 0).then(|| cpu.as_secs_f64() * 1000.0 / self.certificates as f64)
    }

    pub fn server_cpu_ms_per_certificate(&self) -> Option<f64> {
        self.server
            .and_then(|server| self.per_certificate(server.cpu))
    }

    pub fn generator_cpu_ms_per_certificate(&self) -> Option<f64> {
        self.per_certificate(self.generator.cpu)
    }

    pub fn latency(&self, step: Step) -> Percentiles {
        self.latency
            .iter()
            .find(|(s, _)| *s == step)
            .map(|(_, p)| *p)
            .unwrap_or_default()
    }

    pub fn to_json(&self) -> Value {
        let latency: serde_json::Map<String, Value> = self
            .latency
            .iter()
            .map(|(step, p)| {
                (
                    step.name().to_owned(),
                    json!({"count": p.count, "p50_ms": round(p.p50), "p95_ms": round(p.p95),
                           "p99_ms": round(p.p99), "max_ms": round(p.max)}),
                )
            })
            .collect();
        let process = |figures: &ProcessFigures, per_cert: Option<f64>| {
            json!({
                "cpu_ms": round(figures.cpu.as_secs_f64() * 1000.0),
                "cpu_ms_per_certificate": per_cert.map(round),
                "rss_before_kib": figures.rss_before_kib,
                "peak_rss_kib": figures.peak_rss_kib,
            })
        };
        json!({
            "label": self.label,
            "ok": self.ok(),
            "directory_url": self.directory_url,
            "concurrency": self.concurrency,
            "names_per_order": self.names_per_order,
            "stop": self.stop,
            "wall_s": round(self.wall.as_secs_f64()),
            "certificates": self.certificates,
            "certificates_per_second": round(self.certificates_per_second()),
            "verified": self.verified,
            "errors": self.errors,
            "error_examples": self.error_examples,
            "requests": self.requests,
            "requests_per_certificate": self.per_cert_count(self.requests),
            "polls": self.polls,
            "bad_nonce_retries": self.bad_nonce_retries,
            "latency": latency,
            "server": self.server.as_ref().map(|s| process(s, self.server_cpu_ms_per_certificate())),
            "generator": process(&self.generator, self.generator_cpu_ms_per_certificate()),
        })
    }

    fn per_cert_count(&self, count: u64) -> Option<f64> {
        (self.certificates > 0).then(|| round(count as f64 / self.certificates as f64))
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let verdict = if self.ok() {
            "OK".to_owned()
        } else {
            format!("WITH {} ERRORS", self.error_count())
        };
        let _ = writeln!(
            out,
            "== {}: {verdict} — {} certificates in {:.2} s = {:.1} certificates/s \
             (concurrency {}, {} name(s) per order, {})",
            self.label,
            self.certificates,
            self.wall.as_secs_f64(),
            self.certificates_per_second(),
            self.concurrency,
            self.names_per_order,
            self.stop,
        );
        let _ = writeln!(out, "   directory: {}", self.directory_url);
        let _ = writeln!(
            out,
            "   verified: {} certificate(s); requests: {} ({} per certificate); polls: {}; badNonce retries: {}",
            self.verified,
            self.requests,
            self.per_cert_count(self.requests)
                .map_or("-".to_owned(), |n| format!("{n:.1}")),
            self.polls,
            self.bad_nonce_retries
        );
        let _ = writeln!(
            out,
            "   {:<14} {:>7} {:>9} {:>9} {:>9} {:>9}",
            "latency (ms)", "count", "p50", "p95", "p99", "max"
        );
        for (step, p) in &self.latency {
            let _ = writeln!(
                out,
                "   {:<14} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                step.name(),
                p.count,
                p.p50,
                p.p95,
                p.p99,
                p.max
            );
        }
        let describe = |name: &str, figures: &ProcessFigures, per_cert: Option<f64>| {
            format!(
                "   {name}: CPU {:.0} ms ({} ms per certificate); RSS at start {:.1} MiB, peak {:.1} MiB",
                figures.cpu.as_secs_f64() * 1000.0,
                per_cert.map_or("-".to_owned(), |ms| format!("{ms:.2}")),
                figures.rss_before_kib as f64 / 1024.0,
                figures.peak_rss_kib as f64 / 1024.0,
            )
        };
        match &self.server {
            Some(server) => {
                let line = describe("server", server, self.server_cpu_ms_per_certificate());
                let _ = writeln!(out, "{line}");
            }
            None => {
                let _ = writeln!(out, "   server: no --server-pid, so no CPU or RSS figures");
            }
        }
        let line = describe(
            "generator",
            &self.generator,
            self.generator_cpu_ms_per_certificate(),
        );
        let _ = writeln!(out, "{line}");
        for (kind, count) in &self.errors {
            let example = self.error_examples.get(kind).map_or("", String::as_str);
            let _ = writeln!(out, "   ERROR {kind} × {count}: {example}");
        }
        out
    }
}

/// Three decimals are plenty for milliseconds and rates.
fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}
