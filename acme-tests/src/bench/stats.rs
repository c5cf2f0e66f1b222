//! What a run measured: latencies per step, certificates, and errors by kind.
//!
//! Samples are kept whole (a few bytes each, one per step per order) and sorted once at the end,
//! so percentiles are exact rather than bucketed.

use std::collections::BTreeMap;
use std::time::Duration;

/// One timed part of the flow. `Order` is the whole order, from newOrder to the downloaded chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// newAccount, once per virtual client (not part of `Order`).
    Account,
    NewOrder,
    /// POST-as-GET of every authorization of the order.
    Authorization,
    /// POST of every http-01 challenge.
    Challenge,
    /// Polling the order until it is `ready` (every validation done).
    Poll,
    /// The finalize POST, and polling until `valid` if the server answered `processing`.
    Finalize,
    /// POST-as-GET of the certificate chain.
    Download,
    Order,
}

impl Step {
    pub const ALL: [Step; 8] = [
        Step::Order,
        Step::Account,
        Step::NewOrder,
        Step::Authorization,
        Step::Challenge,
        Step::Poll,
        Step::Finalize,
        Step::Download,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::Account => "account",
            Step::NewOrder => "new-order",
            Step::Authorization => "authorization",
            Step::Challenge => "challenge",
            Step::Poll => "poll",
            Step::Finalize => "finalize",
            Step::Download => "download",
            Step::Order => "order",
        }
    }
}

/// Latency percentiles of one step, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// Everything the virtual clients record, merged under one lock once per order.
#[derive(Debug, Default)]
pub struct Stats {
    samples: BTreeMap<Step, Vec<Duration>>,
    /// Certificates issued (and, when sampled, verified).
    pub certificates: u64,
    /// Certificates whose chain and names were checked.
    pub verified: u64,
    /// Orders that failed, by kind: the ACME problem type (`badNonce`, `rateLimited`, …),
    /// `http-<status>` for a non-problem answer, `timeout`, `transport`, `verify`, ….
    pub errors: BTreeMap<String, u64>,
    /// The first message seen for each error kind, to make a failed run explain itself.
    pub error_examples: BTreeMap<String, String>,
    /// Every HTTP request sent to the ACME server (HEAD newNonce included).
    pub requests: u64,
    /// POST-as-GET polls of an order (both while waiting for `ready` and for `valid`).
    pub polls: u64,
    /// Requests repeated once after a `badNonce` answer (RFC 8555 §6.5 asks clients to retry).
    pub bad_nonce_retries: u64,
}

impl Stats {
    pub fn record(&mut self, step: Step, elapsed: Duration) {
        self.samples.entry(step).or_default().push(elapsed);
    }

    pub fn error(&mut self, kind: &str, message: &str) {
        *self.errors.entry(kind.to_owned()).or_default() += 1;
        self.error_examples
            .entry(kind.to_owned())
            .or_insert_with(|| truncate(message, 400));
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Adds everything `other` recorded.
    pub fn merge(&mut self, other: Stats) {
        for (step, samples) in other.samples {
            self.samples.entry(step).or_default().extend(samples);
        }
        self.certificates += other.certificates;
        self.verified += other.verified;
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        for (kind, example) in other.error_examples {
            self.error_examples.entry(kind).or_insert(example);
        }
        self.requests += other.requests;
        self.polls += other.polls;
        self.bad_nonce_retries += other.bad_nonce_retries;
    }

    /// Percentiles of `step` (all zero if it never completed).
    pub fn percentiles(&mut self, step: Step) -> Percentiles {
        let Some(samples) = self.samples.get_mut(&step) else {
            return Percentiles::default();
        };
        samples.sort_unstable();
        Percentiles {
            count: samples.len(),
            p50: millis(percentile(samples, 50.0)),
            p95: millis(percentile(samples, 95.0)),
            p99: millis(percentile(samples, 99.0)),
            max: millis(samples.last().copied().unwrap_or_default()),
        }
    }
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], percent: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (percent / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let cases = [
            ("p50", 50.0, 50),
            ("p95", 95.0, 95),
            ("p99", 99.0, 99),
            ("p100", 100.0, 100),
        ];
        for (case, percent, want) in cases {
            assert_eq!(
                percentile(&samples, percent),
                Duration::from_millis(want),
                "{case}"
            );
        }
        assert_eq!(percentile(&[], 50.0), Duration::ZERO, "empty");
        let one = [Duration::from_millis(7)];
        assert_eq!(percentile(&one, 99.0), Duration::from_millis(7), "single");
    }

    #[test]
    fn merging_adds_counts_and_samples() {
        let mut a = Stats::default();
        a.record(Step::Order, Duration::from_millis(10));
        a.certificates = 1;
        a.error("badNonce", "first");
        let mut b = Stats::default();
        b.record(Step::Order, Duration::from_millis(20));
        b.certificates = 2;
        b.error("badNonce", "second");
        b.error("timeout", "slow");
        a.merge(b);
        assert_eq!(a.certificates, 3);
        assert_eq!(a.error_count(), 3);
        assert_eq!(a.error_examples["badNonce"], "first");
        assert_eq!(a.percentiles(Step::Order).count, 2);
        assert_eq!(a.percentiles(Step::Order).max, 20.0);
    }
}
