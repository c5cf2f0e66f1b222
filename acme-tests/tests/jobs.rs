//! The periodic jobs on two real replicas sharing one PostgreSQL database (issue 7): each job
//! runs on exactly one of them, the renewal alert reaches the webhook once, and when the
//! replica running the jobs stops, the other takes them over.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acme_tests::postgres;
use acme_tests::replicas::ReplicaPair;
use serde_json::Value;

const A: usize = 0;
const B: usize = 1;
/// The job interval the replicas run with: leases last three of them.
const INTERVAL_SECS: u64 = 2;
/// Bound on every wait for something a job does.
const WAIT: Duration = Duration::from_secs(40);

/// A webhook receiver on loopback that keeps every body.
async fn receiver() -> (Arc<Mutex<Vec<Value>>>, String) {
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let kept = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let kept = kept.clone();
            async move {
                kept.lock().expect("the lock").push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let url = format!("http://{}/hook", listener.local_addr().expect("an address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (received, url)
}

/// The value of the counter `series` (name and labels) in `/metrics` of `replica`; 0 when
/// it was never incremented there.
async fn counter(pair: &ReplicaPair, replica: usize, series: &str) -> u64 {
    let url = format!("{}/metrics", pair.bases()[replica]);
    let text = pair
        .http_client()
        .expect("a client")
        .get(&url)
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("a body");
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

const ALERT_RUNS: &str = "mayfly_job_runs_total{job=\"renewal-alerts\",outcome=\"ok\"}";
const PURGE_RUNS: &str = "mayfly_job_runs_total{job=\"purge\",outcome=\"ok\"}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_job_runs_on_one_replica_and_the_other_takes_over() {
    let Ok(admin_url) = std::env::var(postgres::URL_ENV) else {
        eprintln!("skipped: {} is not set", postgres::URL_ENV);
        return;
    };
    acme_tests::install_crypto_provider();
    let (received, hook) = receiver().await;
    let env: Vec<(String, String)> = [
        ("MAYFLY__JOBS__INTERVAL", format!("{INTERVAL_SECS}s")),
        ("MAYFLY__ALERTS__WEBHOOK_URL", hook),
        ("MAYFLY__ALERTS__BACKOFF", "0s".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut pair = ReplicaPair::start_with(&admin_url, &env)
        .await
        .expect("two replicas");
    let mut client = pair.acme_client().expect("a client");
    client.new_account().await.expect("newAccount");
    let issued = client
        .issue(&["overdue.jobs.example"], pair.challenge_server())
        .await
        .expect("a certificate");
    // Its client "stopped renewing": an administrator's window that ended a minute ago.
    let serial = pair
        .query_value(&format!(
            "UPDATE certificates SET \
             renewal_window_start = extract(epoch FROM now())::bigint - 120, \
             renewal_window_end = extract(epoch FROM now())::bigint - 60 \
             WHERE order_id = '{}' RETURNING serial",
            issued.order_id
        ))
        .await
        .expect("the window is moved");

    let started = Instant::now();
    while received.lock().expect("the lock").is_empty() {
        assert!(started.elapsed() < WAIT, "no alert within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Several more rounds on both replicas: still one alert.
    tokio::time::sleep(Duration::from_secs(3 * INTERVAL_SECS)).await;
    let bodies = received.lock().expect("the lock").clone();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(bodies[0]["event"], "renewal_overdue");
    assert_eq!(bodies[0]["serial"], serial.as_str());
    assert_eq!(bodies[0]["identifiers"][0]["value"], "overdue.jobs.example");

    // One replica ran each job, several times; the other never did.
    let runs = [
        counter(&pair, A, ALERT_RUNS).await,
        counter(&pair, B, ALERT_RUNS).await,
    ];
    assert!(
        runs.iter().filter(|&&n| n == 0).count() == 1 && runs.iter().any(|&n| n >= 3),
        "renewal-alerts runs per replica: {runs:?}"
    );
    let leader = if runs[A] > 0 { A } else { B };
    let other = 1 - leader;
    assert_eq!(
        counter(&pair, other, PURGE_RUNS).await,
        0,
        "purge ran on both"
    );
    assert_eq!(
        counter(
            &pair,
            leader,
            "mayfly_renewal_alerts_total{outcome=\"delivered\"}"
        )
        .await,
        1
    );

    // The leader stops (and gives its leases up): the other takes over.
    pair.terminate(leader).expect("the leader stops");
    let started = Instant::now();
    while counter(&pair, other, ALERT_RUNS).await == 0
        || counter(&pair, other, PURGE_RUNS).await == 0
    {
        assert!(started.elapsed() < WAIT, "no takeover within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        received.lock().expect("the lock").len(),
        1,
        "the new leader re-sent the alert"
    );
}
