//! `acme-bench`: the full-flow ACME load generator (issue 9).
//!
//! Against a running server:
//!
//! ```text
//! acme-bench --directory https://127.0.0.1:14000/directory --ca-bundle root-ca.pem \
//!            --http01-port 5002 --server-pid "$(pidof mayfly)" --concurrency 16 --orders 2000
//! ```
//!
//! Or let it start fresh servers (with pebble-challtestsrv as their DNS) and compare them
//! A B A B, each run on a new server:
//!
//! ```text
//! MAYFLY_BIN=target/release/mayfly acme-bench --spawn mayfly --spawn pebble --rounds 2 \
//!            --concurrency 16 --orders 2000
//! ```
//!
//! The exit status is 1 if any run had an error; every run is reported either way.

use std::path::PathBuf;
use std::time::Duration;

use acme_tests::bench::report::Report;
use acme_tests::bench::servers::{self, Kind, MayflySetup};
use acme_tests::bench::stats::Step;
use acme_tests::bench::{self, Options, Stop};
use anyhow::{Context, Result, bail};
use clap::Parser;

/// Lines of a spawned server's log shown after a run with errors.
const LOG_TAIL: usize = 20;

#[derive(Debug, Parser)]
#[command(about = "Full-flow ACME load generator: http-01 orders against any directory URL")]
struct Cli {
    /// The ACME directory URL of a running server.
    #[arg(long, conflicts_with = "spawn", required_unless_present = "spawn")]
    directory: Option<String>,
    /// Start a fresh server of this kind for each run (mayfly or pebble); repeat to alternate.
    #[arg(long, value_parser = Kind::parse)]
    spawn: Vec<Kind>,
    /// How many times to run the --spawn list (2 with mayfly and pebble: A B A B).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Virtual clients, each with its own account, running one order at a time.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Stop after this many orders (default 1000 unless --duration is given).
    #[arg(long, conflicts_with = "duration")]
    orders: Option<u64>,
    /// Stop starting orders after this many seconds.
    #[arg(long)]
    duration: Option<f64>,
    /// DNS names per order.
    #[arg(long, default_value_t = 1)]
    names_per_order: usize,
    /// PEM roots for the server's HTTPS certificate (default: the system roots).
    #[arg(long)]
    ca_bundle: Option<PathBuf>,
    /// PEM root issued chains must lead to (default: the CA bundle).
    #[arg(long)]
    issuer_root: Option<PathBuf>,
    /// The port the server validates http-01 against; the generator listens there.
    #[arg(long, default_value_t = 5002)]
    http01_port: u16,
    /// The server's PID, for its CPU time per certificate and its peak RSS.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Verify every certificate's chain and names (default: one in --verify-sample).
    #[arg(long)]
    verify_all: bool,
    #[arg(long, default_value_t = 50)]
    verify_sample: u64,
    /// Bound on each HTTP request, in seconds.
    #[arg(long, default_value_t = 10.0)]
    request_timeout: f64,
    /// Pause before each poll of an order, in milliseconds.
    #[arg(long, default_value_t = 5)]
    poll_ms: u64,
    /// Bound on waiting for an order to become ready or valid, in seconds.
    #[arg(long, default_value_t = 30.0)]
    poll_timeout: f64,
    /// No order starts after this many seconds, whatever else is asked.
    #[arg(long, default_value_t = 600.0)]
    max_time: f64,
    /// Stop starting orders once this many failed (the run is reported with its errors).
    #[arg(long, default_value_t = 50)]
    max_errors: u64,
    /// Print a JSON array of the runs' reports instead of text.
    #[arg(long)]
    json: bool,
    /// With --spawn mayfly: a MAYFLY__* setting as KEY=VALUE (repeatable).
    #[arg(long = "mayfly-env", value_parser = key_value)]
    mayfly_env: Vec<(String, String)>,
    /// With --spawn mayfly: seed this many certificates into its database before serving.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// With --spawn mayfly: use (and keep) this data directory instead of a fresh one.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Seconds to wait after a spawned server is up before the run starts, so that its
    /// start-up work (Mayfly's first round of periodic jobs) is not counted in the run.
    #[arg(long, default_value_t = 0.0)]
    settle: f64,
}

fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let mut reports = Vec::new();
    if let Some(directory) = &cli.directory {
        let mut options = options(&cli, directory.clone(), cli.http01_port);
        options.server_pid = cli.server_pid;
        options.label = "server".to_owned();
        reports.push(run(&cli, options).await?);
    } else {
        let setup = MayflySetup {
            env: cli.mayfly_env.clone(),
            seed_certificates: cli.seed,
            data_dir: cli.data_dir.clone(),
        };
        for round in 1..=cli.rounds.max(1) {
            for &kind in &cli.spawn {
                let spawned = servers::spawn(kind, &setup)
                    .await
                    .with_context(|| format!("starting {}", kind.name()))?;
                if cli.seed > 0 && kind == Kind::Mayfly && cli.data_dir.is_some() {
                    bail!(
                        "--seed with --data-dir would seed the directory again on every run; seed it once with acme-seed"
                    );
                }
                if cli.settle > 0.0 {
                    tokio::time::sleep(Duration::from_secs_f64(cli.settle)).await;
                }
                let target = &spawned.target;
                let mut options = options(&cli, target.directory_url.clone(), target.http01_port);
                options.ca_bundle = Some(target.tls_root.clone());
                options.issuer_root = Some(target.issuer_root.clone());
                options.server_pid = Some(spawned.pid);
                options.label = format!("{} #{round}", kind.name());
                let report = run(&cli, options).await?;
                if !report.ok() {
                    let log = spawned.log();
                    let tail: Vec<&str> = log.lines().rev().take(LOG_TAIL).collect();
                    eprintln!("--- last lines of the {} log ---", kind.name());
                    for line in tail.iter().rev() {
                        eprintln!("{line}");
                    }
                }
                reports.push(report);
                drop(spawned);
            }
        }
    }
    if cli.json {
        let all: Vec<_> = reports.iter().map(Report::to_json).collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else if reports.len() > 1 {
        println!("{}", summary(&reports));
    }
    if reports.iter().any(|report| !report.ok()) {
        std::process::exit(1);
    }
    Ok(())
}

fn options(cli: &Cli, directory_url: String, http01_port: u16) -> Options {
    let mut options = Options::new(directory_url, http01_port);
    options.ca_bundle = cli.ca_bundle.clone();
    options.issuer_root = cli.issuer_root.clone();
    options.concurrency = cli.concurrency;
    options.stop = match (cli.orders, cli.duration) {
        (_, Some(seconds)) => Stop::Duration(Duration::from_secs_f64(seconds)),
        (orders, None) => Stop::Orders(orders.unwrap_or(1000)),
    };
    options.names_per_order = cli.names_per_order;
    options.verify_all = cli.verify_all;
    options.verify_sample = cli.verify_sample;
    options.request_timeout = Duration::from_secs_f64(cli.request_timeout);
    options.poll_interval = Duration::from_millis(cli.poll_ms);
    options.poll_timeout = Duration::from_secs_f64(cli.poll_timeout);
    options.max_time = Duration::from_secs_f64(cli.max_time);
    options.max_errors = cli.max_errors;
    options
}

async fn run(cli: &Cli, options: Options) -> Result<Report> {
    let label = options.label.clone();
    let report = bench::run(options)
        .await
        .with_context(|| format!("running against {label}"))?;
    if !cli.json {
        println!("{}", report.to_text());
    }
    Ok(report)
}

/// One line per run, for A B A B comparisons at a glance.
fn summary(reports: &[Report]) -> String {
    let mut lines = vec![format!(
        "{:<12} {:>6} {:>7} {:>9} {:>10} {:>9} {:>9} {:>11} {:>10} {:>8}",
        "run",
        "ok",
        "certs",
        "certs/s",
        "srv ms/c",
        "gen ms/c",
        "p50 ms",
        "p99 ms",
        "peak MiB",
        "errors"
    )];
    for report in reports {
        let order = report.latency(Step::Order);
        let cpu = |value: Option<f64>| value.map_or("-".to_owned(), |ms| format!("{ms:.2}"));
        lines.push(format!(
            "{:<12} {:>6} {:>7} {:>9.1} {:>10} {:>9} {:>9.1} {:>11.1} {:>10.1} {:>8}",
            report.label,
            if report.ok() { "yes" } else { "NO" },
            report.certificates,
            report.certificates_per_second(),
            cpu(report.server_cpu_ms_per_certificate()),
            cpu(report.generator_cpu_ms_per_certificate()),
            order.p50,
            order.p99,
            report
                .server
                .map_or(0.0, |s| s.peak_rss_kib as f64 / 1024.0),
            report.error_count(),
        ));
    }
    lines.join("\n")
}
