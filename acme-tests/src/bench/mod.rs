//! The full-flow ACME load generator behind `acme-bench` (issue 9), usable as a library by the
//! smoke test.
//!
//! It drives any directory URL, Mayfly and Pebble alike: each of `concurrency` virtual clients
//! creates one account and then runs orders through the whole http-01 flow ([`flow`]) until
//! the run has issued `orders` certificates or `duration` has passed. The http-01 answers come
//! from the generator's own responder ([`responder`]) on the port the server validates against;
//! names resolve to 127.0.0.1 through pebble-challtestsrv, which both servers use as their DNS.
//!
//! Every request is bounded (`request_timeout`), every poll loop is bounded (`poll_timeout`),
//! and no order starts after `max_time`, so a wedged server ends the run with errors rather
//! than hanging it.
//!
//! - [`flow`]: one virtual client.
//! - [`responder`]: the http-01 responder.
//! - [`stats`]: latency samples, percentiles and errors by kind.
//! - [`probe`]: the server's (and the generator's) CPU time and RSS from `/proc`.
//! - [`report`]: the figures of a run, as text or JSON.
//! - [`servers`]: starting Mayfly or Pebble (and the DNS) for a run, fresh each time.
//! - [`seed`]: filling a SQLite database with realistic rows, for the scale measurement.

pub mod flow;
pub mod probe;
pub mod report;
pub mod responder;
pub mod seed;
pub mod servers;
pub mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use self::flow::VirtualClient;
use self::report::Report;
use self::responder::Responder;
use self::stats::Stats;

/// When a run ends.
#[derive(Clone, Copy, Debug)]
pub enum Stop {
    /// After this many orders were started (each ends issued or failed).
    Orders(u64),
    /// No new order starts after this long; orders in flight finish.
    Duration(Duration),
}

/// What to run against, and how hard.
#[derive(Clone, Debug)]
pub struct Options {
    /// The ACME directory URL.
    pub directory_url: String,
    /// PEM file of the roots that sign the server's HTTPS certificate; `None`: system roots.
    pub ca_bundle: Option<PathBuf>,
    /// PEM file of the root issued chains must lead to; `None`: the CA bundle.
    pub issuer_root: Option<PathBuf>,
    /// The port the server connects to for http-01 (80 in production; a test port here).
    pub http01_port: u16,
    pub concurrency: usize,
    pub stop: Stop,
    pub names_per_order: usize,
    /// Verify every certificate (chain and names), not just a sample.
    pub verify_all: bool,
    /// Verify one certificate in this many when not `verify_all` (and always the first).
    pub verify_sample: u64,
    /// Bound on each HTTP request.
    pub request_timeout: Duration,
    /// Pause before each poll of an order.
    pub poll_interval: Duration,
    /// Bound on waiting for an order to become ready, or valid.
    pub poll_timeout: Duration,
    /// No order starts after this long, whatever `stop` says.
    pub max_time: Duration,
    /// No order starts once this many orders failed: a wedged server (Pebble's deadlock)
    /// would otherwise cost `request_timeout` per remaining order.
    pub max_errors: u64,
    /// The server's process id, for its CPU time and peak RSS.
    pub server_pid: Option<u32>,
    /// A name for the report (e.g. `mayfly` or `pebble`).
    pub label: String,
}

impl Options {
    /// Sensible bounds for `directory_url`, validated on `http01_port`.
    pub fn new(directory_url: impl Into<String>, http01_port: u16) -> Self {
        Options {
            directory_url: directory_url.into(),
            ca_bundle: None,
            issuer_root: None,
            http01_port,
            concurrency: 16,
            stop: Stop::Orders(1000),
            names_per_order: 1,
            verify_all: false,
            verify_sample: 50,
            request_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(5),
            poll_timeout: Duration::from_secs(30),
            max_time: Duration::from_secs(600),
            max_errors: 50,
            server_pid: None,
            label: "server".to_owned(),
        }
    }
}

/// The ACME endpoints the generator uses (RFC 8555 §7.1.1).
#[derive(Clone, Debug)]
pub struct Directory {
    pub new_nonce: String,
    pub new_account: String,
    pub new_order: String,
}

/// What every virtual client of one run shares.
pub struct Run {
    pub options: Options,
    pub directory: Directory,
    /// One client, so connections are kept alive and reused across orders.
    pub http: reqwest::Client,
    pub responder: Responder,
    /// The root PEM that issued chains are verified against.
    pub issuer_root: Option<Vec<u8>>,
    /// Distinguishes this run's names from any earlier run's on the same server, so no
    /// authorization is ever reused and every order does the whole flow.
    pub label: String,
    next_order: AtomicU64,
    /// Orders (and accounts) that failed so far, across all clients.
    failed: AtomicU64,
    started: Instant,
}

impl Run {
    /// The next order's sequence number, or `None` when the run should stop.
    pub fn claim_order(&self) -> Option<u64> {
        if self.failed.load(Ordering::Relaxed) >= self.options.max_errors {
            return None;
        }
        let sequence = self.next_order.fetch_add(1, Ordering::Relaxed);
        flow::has_work(
            &self.options.stop,
            sequence,
            self.started,
            self.options.max_time,
        )
        .then_some(sequence)
    }

    /// Counts a failed order or account towards `max_errors`.
    pub fn count_failure(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    fn should_verify(&self, sequence: u64) -> bool {
        self.options.verify_all || sequence.is_multiple_of(self.options.verify_sample.max(1))
    }
}

/// Runs the generator and returns its report. A run with errors is an `Ok` report that says
/// so; `Err` means the run could not start (no directory, port taken, …).
pub async fn run(options: Options) -> Result<Report> {
    crate::install_crypto_provider();
    ensure!(options.concurrency > 0, "concurrency must be at least 1");
    ensure!(
        options.names_per_order > 0,
        "names per order must be at least 1"
    );
    let http = http_client(&options)?;
    let directory = fetch_directory(&http, &options.directory_url).await?;
    let issuer_root = match options.issuer_root.as_ref().or(options.ca_bundle.as_ref()) {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        }
        None => None,
    };
    let responder = Responder::start(options.http01_port).await?;
    let label = format!(
        "r{:08x}",
        u32::from_be_bytes(mayfly::authority::random_bytes::<4>())
    );

    let server_before = options
        .server_pid
        .map(|pid| probe::sample(Some(pid)))
        .transpose()?;
    let generator_before = probe::sample(None)?;
    let started = Instant::now();
    let run = Arc::new(Run {
        options: options.clone(),
        directory,
        http,
        responder,
        issuer_root,
        label,
        next_order: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        started,
    });
    let clients: Vec<_> = (0..options.concurrency)
        .map(|_| tokio::spawn(VirtualClient::new(run.clone()).drive()))
        .collect();
    let mut stats = Stats::default();
    for client in clients {
        match client.await {
            Ok(client_stats) => stats.merge(client_stats),
            Err(e) => stats.error("generator", &format!("a virtual client panicked: {e}")),
        }
    }
    let wall = started.elapsed();
    let generator_after = probe::sample(None)?;
    let server_after = options
        .server_pid
        .map(|pid| probe::sample(Some(pid)))
        .transpose()?;

    Ok(Report::new(
        &options,
        &mut stats,
        wall,
        server_before.zip(server_after),
        (generator_before, generator_after),
    ))
}

fn http_client(options: &Options) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(options.request_timeout)
        .connect_timeout(options.request_timeout)
        .pool_max_idle_per_host(options.concurrency)
        .tcp_nodelay(true);
    if let Some(bundle) = &options.ca_bundle {
        let pem = std::fs::read(bundle).with_context(|| format!("reading {}", bundle.display()))?;
        let roots = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("parsing {}", bundle.display()))?;
        builder = builder.tls_certs_only(roots);
    }
    Ok(builder.build()?)
}

async fn fetch_directory(http: &reqwest::Client, url: &str) -> Result<Directory> {
    let directory: Value = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?
        .error_for_status()?
        .json()
        .await
        .with_context(|| format!("the directory at {url} is not JSON"))?;
    let field = |name: &str| {
        directory[name]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("the directory has no {name}: {directory}"))
    };
    Ok(Directory {
        new_nonce: field("newNonce")?,
        new_account: field("newAccount")?,
        new_order: field("newOrder")?,
    })
}
