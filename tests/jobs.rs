//! The periodic jobs in process (issue 7): leases decide which of two replicas runs a job,
//! the renewal alert reaches a webhook once, with retries, and the gauges count it.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, Method, StatusCode};
use mayfly::config::{Config, HumanDuration};
use mayfly::jobs::alerts::{Alert, Delivery, deliver};
use mayfly::jobs::{Jobs, PURGE, RENEWAL_ALERTS};
use serde_json::Value;
use support::{NAME, TestCa, csr};
use time::{Duration, OffsetDateTime};

/// A webhook receiver on loopback: answers each POST with the next status of `script` (200
/// once the script is used up) and keeps what it was sent.
#[derive(Clone, Default)]
struct Receiver {
    script: Arc<Mutex<Vec<StatusCode>>>,
    received: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
}

impl Receiver {
    async fn start(script: &[StatusCode]) -> (Receiver, String) {
        let receiver = Receiver {
            script: Arc::new(Mutex::new(script.iter().rev().copied().collect())),
            ..Receiver::default()
        };
        let app = axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(
                    |axum::extract::State(r): axum::extract::State<Receiver>,
                     headers: HeaderMap,
                     axum::Json(body): axum::Json<Value>| async move {
                        r.received.lock().unwrap().push((headers, body));
                        r.script.lock().unwrap().pop().unwrap_or(StatusCode::OK)
                    },
                ),
            )
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    fn bodies(&self) -> Vec<Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }
}

fn alert<'a>(identifiers: &'a [mayfly::acme::Identifier]) -> Alert<'a> {
    let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    Alert {
        event: mayfly::jobs::alerts::EVENT,
        serial: "4a0b",
        account: "https://ca.example/acme/acct/1".into(),
        identifiers,
        profile: Some("hours"),
        not_before: t,
        not_after: t + Duration::hours(24),
        renewal_window_end: t + Duration::hours(12),
        directory: "https://ca.example/directory".into(),
    }
}

#[tokio::test]
async fn delivery_retries_server_errors_and_429_and_stops_at_other_4xx() {
    let identifiers = vec![mayfly::acme::Identifier::parse("dns", NAME).unwrap()];
    let client = reqwest::Client::new();
    let backoff = std::time::Duration::from_millis(5);

    let (receiver, url) = Receiver::start(&[
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::TOO_MANY_REQUESTS,
    ])
    .await;
    let outcome = deliver(&client, &url, &alert(&identifiers), 5, backoff).await;
    assert_eq!(outcome, Delivery::Delivered { attempts: 3 });
    let received = receiver.received.lock().unwrap().clone();
    assert_eq!(received.len(), 3, "the same alert, three times");
    let (headers, body) = &received[2];
    assert_eq!(headers["x-mayfly-event"], "renewal_overdue");
    assert_eq!(headers["idempotency-key"], "renewal_overdue:4a0b");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(body["event"], "renewal_overdue");
    assert_eq!(body["serial"], "4a0b");
    assert_eq!(body["identifiers"][0]["value"], NAME);
    assert_eq!(body["not_after"], "2027-01-16T08:00:00Z");
    assert_eq!(body["renewal_window_end"], "2027-01-15T20:00:00Z");

    // A 4xx other than 408 and 429 would be refused again: one attempt.
    let (receiver, url) = Receiver::start(&[StatusCode::BAD_REQUEST]).await;
    let outcome = deliver(&client, &url, &alert(&identifiers), 5, backoff).await;
    assert_eq!(
        outcome,
        Delivery::Failed {
            attempts: 1,
            error: "the webhook answered 400 Bad Request".into()
        }
    );
    assert_eq!(receiver.bodies().len(), 1);

    // Down for every attempt.
    let (receiver, url) = Receiver::start(&[StatusCode::BAD_GATEWAY; 3]).await;
    let outcome = deliver(&client, &url, &alert(&identifiers), 3, backoff).await;
    assert!(
        matches!(outcome, Delivery::Failed { attempts: 3, ref error } if error.contains("502")),
        "{outcome:?}"
    );
    assert_eq!(receiver.bodies().len(), 3);
}

/// Issues a certificate for NAME; returns its serial in lower-case hex and the account URL.
async fn issue(ca: &TestCa) -> (String, String) {
    let account = ca.new_account().await;
    let (_, order) = ca.ready_order(&account, &[NAME]).await;
    let order = ca
        .finalize(&account, &order, &csr(&[NAME]))
        .await
        .expect_json(StatusCode::OK);
    let chain = ca
        .post_as_get(&account, order["certificate"].as_str().unwrap())
        .await;
    let der = support::pem_certificates(&chain.body).remove(0);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let serial = cert
        .raw_serial()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .trim_start_matches('0')
        .to_owned();
    (serial, account.url)
}

async fn metrics(ca: &TestCa) -> String {
    let reply = ca.request(Method::GET, "/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    String::from_utf8(reply.body.to_vec()).unwrap()
}

#[tokio::test]
async fn one_replica_runs_each_job_and_the_alert_arrives_once() {
    // The webhook is down for the first attempt.
    let (receiver, url) = Receiver::start(&[StatusCode::SERVICE_UNAVAILABLE]).await;
    let mut config = Config::default();
    config.alerts.webhook_url = Some(url);
    config.alerts.backoff = HumanDuration(Duration::ZERO);
    let ca = TestCa::with_config(config).await;
    let (serial, account) = issue(&ca).await;
    // Two replicas on one database.
    let (a, b) = (Jobs::new(&ca.state).unwrap(), Jobs::new(&ca.state).unwrap());

    assert_eq!(a.run_once().await, vec![PURGE, RENEWAL_ALERTS]);
    assert_eq!(
        b.run_once().await,
        Vec::<&str>::new(),
        "a holds both leases"
    );
    assert!(receiver.bodies().is_empty(), "nothing is overdue yet");
    assert!(
        metrics(&ca)
            .await
            .contains("mayfly_certificates_in_renewal_window{profile=\"hours\"} 0")
    );

    // The default profile lives a day; its window closes a little after half of it.
    ca.clock.advance(Duration::hours(13));
    assert_eq!(a.run_once().await, vec![PURGE, RENEWAL_ALERTS]);
    assert_eq!(b.run_once().await, Vec::<&str>::new());
    let bodies = receiver.bodies();
    assert_eq!(bodies.len(), 2, "one failed attempt, then the delivery");
    assert_eq!(bodies[0], bodies[1]);
    let body = &bodies[1];
    assert_eq!(body["event"], "renewal_overdue");
    assert_eq!(
        body["serial"].as_str().unwrap().trim_start_matches('0'),
        serial
    );
    assert_eq!(
        body["identifiers"],
        serde_json::json!([{"type": "dns", "value": NAME}])
    );
    assert_eq!(body["profile"], "hours");
    assert_eq!(body["account"], account);
    assert_eq!(body["directory"], support::url("/directory"));

    // Reported once: later runs send nothing, whichever replica runs them.
    a.run_once().await;
    let text = metrics(&ca).await;
    assert!(
        text.contains("mayfly_certificates_renewal_overdue{profile=\"hours\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("mayfly_renewal_alerts_total{outcome=\"delivered\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("mayfly_job_runs_total{job=\"renewal-alerts\",outcome=\"ok\"} 3"),
        "{text}"
    );

    // a stops without giving its leases up: b takes over once they run out (3 intervals).
    ca.clock.advance(Duration::minutes(3));
    assert_eq!(b.run_once().await, vec![PURGE, RENEWAL_ALERTS]);
    assert_eq!(a.run_once().await, Vec::<&str>::new(), "b holds them now");
    // b gives them up at shutdown: a takes them at once.
    b.release().await;
    assert_eq!(a.run_once().await, vec![PURGE, RENEWAL_ALERTS]);
    assert_eq!(receiver.bodies().len(), 2);
}

#[tokio::test]
async fn an_undelivered_alert_waits_for_the_next_run() {
    let (receiver, url) = Receiver::start(&[StatusCode::BAD_GATEWAY; 2]).await;
    let mut config = Config::default();
    config.alerts.webhook_url = Some(url);
    config.alerts.attempts = 2;
    config.alerts.backoff = HumanDuration(Duration::ZERO);
    let ca = TestCa::with_config(config).await;
    issue(&ca).await;
    let jobs = Jobs::new(&ca.state).unwrap();
    ca.clock.advance(Duration::hours(13));

    jobs.run_once().await;
    assert_eq!(receiver.bodies().len(), 2, "both attempts failed");
    let text = metrics(&ca).await;
    assert!(
        text.contains("mayfly_renewal_alerts_total{outcome=\"failed\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("mayfly_job_runs_total{job=\"renewal-alerts\",outcome=\"error\"} 1"),
        "{text}"
    );

    jobs.run_once().await;
    assert_eq!(receiver.bodies().len(), 3, "delivered at the next run");
    jobs.run_once().await;
    assert_eq!(receiver.bodies().len(), 3, "and only then marked");
}

#[tokio::test]
async fn the_purge_deletes_abandoned_orders_after_the_retention() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let (order_url, order) = ca.new_order(&account, &[NAME]).await;
    let expires = OffsetDateTime::parse(
        order["expires"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let jobs = Jobs::new(&ca.state).unwrap();

    // The default retention is a day after expiry.
    ca.clock
        .set(expires + Duration::hours(24) - Duration::minutes(1));
    jobs.run_once().await;
    let reply = ca.post_as_get(&account, &order_url).await;
    assert_eq!(reply.status, StatusCode::OK, "still within the retention");
    assert_eq!(
        reply.json()["status"],
        "invalid",
        "expired (RFC 8555 §7.1.6)"
    );

    ca.clock.advance(Duration::minutes(2));
    jobs.run_once().await;
    let reply = ca.post_as_get(&account, &order_url).await;
    reply.expect_problem(404, "malformed");
}
