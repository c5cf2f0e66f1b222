//! A few orders through the load generator (`acme_tests::bench`, the body of `acme-bench`),
//! so that it keeps working. The real runs are not part of the test suite: see BENCHMARKS.md.

use std::time::Duration;

use acme_tests::Environment;
use acme_tests::bench::servers::{self, Kind, MayflySetup};
use acme_tests::bench::stats::Step;
use acme_tests::bench::{self, Options, Stop};

/// Enough orders to exercise concurrency, nonce chaining and verification; few enough to take
/// a few seconds even in a debug build on a busy machine.
const ORDERS: u64 = 5;
const CONCURRENCY: usize = 2;

fn smoke_options(env_target: &acme_tests::AcmeTarget) -> Options {
    let mut options = Options::new(env_target.directory_url.clone(), env_target.http01_port);
    options.ca_bundle = Some(env_target.tls_root.clone());
    options.issuer_root = Some(env_target.issuer_root.clone());
    options.concurrency = CONCURRENCY;
    options.stop = Stop::Orders(ORDERS);
    options.names_per_order = 2;
    options.verify_all = true;
    options.max_time = Duration::from_secs(60);
    options.label = "smoke".to_owned();
    options
}

#[tokio::test]
async fn generator_issues_and_verifies_a_few_certificates_on_mayfly() -> anyhow::Result<()> {
    let env = Environment::mayfly().await?;
    let mut report = bench::run(smoke_options(env.target())).await?;
    assert!(report.ok(), "{}", report.to_text());
    assert_eq!(report.certificates, ORDERS, "{}", report.to_text());
    assert_eq!(report.verified, ORDERS, "{}", report.to_text());
    assert_eq!(report.latency(Step::Account).count, CONCURRENCY);
    assert_eq!(report.latency(Step::Order).count, ORDERS as usize);
    // The report must carry everything the JSON output promises.
    report.label.push_str(" (json)");
    let json = report.to_json();
    assert_eq!(json["ok"], true);
    assert_eq!(json["certificates"], ORDERS);
    assert!(json["latency"]["order"]["p99_ms"].as_f64().is_some());
    Ok(())
}

#[tokio::test]
async fn spawned_server_reports_its_cpu_and_memory() -> anyhow::Result<()> {
    let spawned = servers::spawn(Kind::Mayfly, &MayflySetup::default()).await?;
    let mut options = smoke_options(&spawned.target);
    options.stop = Stop::Orders(2);
    options.names_per_order = 1;
    options.server_pid = Some(spawned.pid);
    let report = bench::run(options).await?;
    assert!(report.ok(), "{}", report.to_text());
    let server = report.server.expect("a server PID was given");
    assert!(server.peak_rss_kib > 0, "{}", report.to_text());
    assert!(server.peak_rss_kib >= server.rss_before_kib);
    assert!(report.server_cpu_ms_per_certificate().is_some());
    Ok(())
}

#[tokio::test]
async fn a_server_that_is_not_there_fails_fast() {
    let mut options = Options::new("https://127.0.0.1:1/directory", 0);
    options.request_timeout = Duration::from_secs(2);
    let started = std::time::Instant::now();
    assert!(bench::run(options).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
}
