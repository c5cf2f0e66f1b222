//! Operations endpoints (issue 7, observability): `/health`, `/ready`, `/metrics` and the
//! request id, in process.
//!
//! The metrics recorder is global to the process, and the tests of this file run in parallel:
//! they assert that counters moved by at least what they did, never exact totals.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use mayfly::config::{Config, LogFormat};
use mayfly::jose::{KeyRef, SigningKey, sign_jws};
use serde_json::{Value, json};
use support::{JOSE, NAME, TestCa, csr, url};
use tower::ServiceExt;

#[tokio::test]
async fn health_is_ok_and_gets_no_nonce() {
    let ca = TestCa::new().await;
    let reply = ca.request(Method::GET, "/health").await;
    assert_eq!(reply.expect_json(StatusCode::OK), json!({"status": "ok"}));
    assert_eq!(reply.header("replay-nonce"), None);
    assert_eq!(reply.header("link"), None);
}

#[tokio::test]
async fn ready_when_the_database_answers() {
    let ca = TestCa::new().await;
    let reply = ca.request(Method::GET, "/ready").await;
    assert_eq!(
        reply.expect_json(StatusCode::OK),
        json!({"status": "ready", "database": "ok", "ca": "ok"})
    );
    assert_eq!(reply.header("replay-nonce"), None);
}

#[tokio::test]
async fn not_ready_when_the_database_is_gone() {
    let ca = TestCa::new().await;
    ca.store.close().await;
    let reply = ca.request(Method::GET, "/ready").await;
    assert_eq!(
        reply.expect_json(StatusCode::SERVICE_UNAVAILABLE),
        json!({
            "status": "not ready",
            "database": "the database does not answer",
            "ca": "ok",
        })
    );
    // Liveness does not depend on the database.
    let reply = ca.request(Method::GET, "/health").await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn request_id_is_echoed_when_sane_and_made_up_otherwise() {
    let ca = TestCa::new().await;
    let with_id = |id: &str| {
        Request::get("/health")
            .header("x-request-id", id)
            .body(Body::empty())
            .unwrap()
    };
    let reply = ca.send(with_id("trace-0123456789abcdef")).await;
    assert_eq!(reply.header("x-request-id"), Some("trace-0123456789abcdef"));

    let made_up = ca.request(Method::GET, "/directory").await;
    let first = made_up
        .header("x-request-id")
        .expect("a made-up id")
        .to_owned();
    assert!(!first.is_empty() && first.len() <= 64, "{first}");
    let again = ca.request(Method::GET, "/directory").await;
    assert_ne!(again.header("x-request-id"), Some(first.as_str()));

    let too_long = "x".repeat(65);
    let reply = ca.send(with_id(&too_long)).await;
    let replaced = reply.header("x-request-id").unwrap();
    assert_ne!(replaced, too_long);
    let reply = ca.send(with_id("two words")).await;
    assert_ne!(reply.header("x-request-id"), Some("two words"));

    // Unknown paths (problems) carry it too.
    let request = Request::get("/no/such/thing")
        .header("x-request-id", "unmatched-1")
        .body(Body::empty())
        .unwrap();
    let reply = ca.send(request).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.header("x-request-id"), Some("unmatched-1"));
}

/// A 5xx problem is generic; its cause is logged on a line that carries the request id.
#[tokio::test]
async fn an_internal_error_is_logged_with_the_request_id() {
    let ca = TestCa::new().await;
    let nonce = ca.nonce().await;
    ca.store.close().await;

    let lines = Arc::new(Mutex::new(Vec::<u8>::new()));
    let writer = {
        let lines = lines.clone();
        move || Capture(lines.clone())
    };
    let subscriber = mayfly::telemetry::log_subscriber(
        LogFormat::Json,
        tracing_subscriber::EnvFilter::new("info"),
        writer,
        false,
    );
    let _guard = tracing::subscriber::set_default(subscriber);

    let key = SigningKey::generate_p256();
    let jws = sign_jws(
        &key,
        KeyRef::Jwk,
        Some(&nonce),
        &url("/acme/new-account"),
        Some(&json!({})),
    );
    let request = Request::post("/acme/new-account")
        .header("content-type", JOSE)
        .header("x-request-id", "req-closed-db-1")
        .body(Body::from(jws.to_string()))
        .unwrap();
    let reply = ca.send(request).await;
    let problem = reply.expect_problem(500, "serverInternal");
    let detail = problem["detail"].as_str().unwrap();
    assert!(!detail.contains("closed"), "the cause stays out: {detail}");
    assert_eq!(reply.header("x-request-id"), Some("req-closed-db-1"));

    let text = String::from_utf8(lines.lock().unwrap().clone()).unwrap();
    let logged: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .filter(|line: &Value| line["fields"]["message"] == "internal error")
        .collect();
    assert_eq!(logged.len(), 1, "{text}");
    assert_eq!(
        logged[0]["spans"][0]["request_id"], "req-closed-db-1",
        "{text}"
    );
    assert!(
        logged[0]["fields"]["error"]
            .as_str()
            .unwrap()
            .contains("closed"),
        "{text}"
    );
}

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics

/// The samples of a Prometheus text exposition: (series with labels, value). Panics on a line
/// that is neither a comment nor `name{labels} value`.
fn samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not a sample: {line:?}"));
            let name_end = series.find('{').unwrap_or(series.len());
            let name = &series[..name_end];
            assert!(
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "bad metric name in {line:?}"
            );
            if name_end < series.len() {
                assert!(series.ends_with('}'), "unclosed labels in {line:?}");
            }
            let value = value
                .parse::<f64>()
                .unwrap_or_else(|e| panic!("bad value in {line:?}: {e}"));
            (series.to_owned(), value)
        })
        .collect()
}

/// The sum of the samples of `name` whose labels include every one of `labels`
/// (`key="value"`).
fn value(text: &str, name: &str, labels: &[&str]) -> f64 {
    samples(text)
        .into_iter()
        .filter(|(series, _)| {
            series.split('{').next() == Some(name) && labels.iter().all(|l| series.contains(l))
        })
        .map(|(_, v)| v)
        .sum()
}

async fn scrape(ca: &TestCa) -> String {
    let reply = ca.request(Method::GET, "/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(reply.header("replay-nonce"), None);
    String::from_utf8(reply.body.to_vec()).unwrap()
}

#[tokio::test]
async fn metrics_move_with_an_issuance() {
    let ca = TestCa::new().await;
    let before = scrape(&ca).await;
    let issued = ["mayfly_certificates_issued_total", "profile=\"hours\""];
    let finalized = [
        "mayfly_http_requests_total",
        "endpoint=\"/acme/order/{id}/finalize\"",
        "status=\"200\"",
    ];
    let validated = [
        "mayfly_validations_total",
        "type=\"http-01\"",
        "outcome=\"valid\"",
    ];
    let rejected = ["mayfly_nonces_rejected_total", "reason=\"invalid\""];
    // Every storage operation is timed, by Store method.
    let stored = [
        "mayfly_db_query_duration_seconds_count",
        "operation=\"complete_order_audited\"",
    ];
    let count = |text: &str, query: &[&str]| value(text, query[0], &query[1..]);

    let account = ca.new_account().await;
    let (_, order) = ca.ready_order(&account, &[NAME]).await;
    let reply = ca.finalize(&account, &order, &csr(&[NAME])).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    // A nonce this server never issued.
    let jws = sign_jws(
        &account.key,
        KeyRef::Kid(&account.url),
        Some("bm90LWEtbm9uY2U"),
        &url("/acme/new-order"),
        Some(&json!({"identifiers": [{"type": "dns", "value": NAME}]})),
    );
    ca.post_jws("/acme/new-order", &jws)
        .await
        .expect_problem(400, "badNonce");
    // A CRL signed, so its age is reported.
    let crl = Request::get(format!("/crl/{}.crl", ca.issuer.crl_name()))
        .body(Body::empty())
        .unwrap();
    let response = ca.crl_router.clone().oneshot(crl).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let after = scrape(&ca).await;
    for query in [&issued[..], &finalized, &validated, &rejected, &stored] {
        assert!(
            count(&after, query) >= count(&before, query) + 1.0,
            "{query:?} did not move:\n{after}"
        );
    }
    for name in [
        "mayfly_http_requests_total",
        "mayfly_http_request_duration_seconds_bucket",
        "mayfly_http_request_duration_seconds_count",
        "mayfly_certificates_issued_total",
        "mayfly_issuance_duration_seconds_bucket",
        "mayfly_validations_total",
        "mayfly_nonces_rejected_total",
        "mayfly_crl_age_seconds",
        "mayfly_db_query_duration_seconds_bucket",
    ] {
        assert!(
            samples(&after).iter().any(|(s, _)| s.starts_with(name)),
            "{name} missing:\n{after}"
        );
    }
    // Route templates, never raw paths (the label set stays small).
    for (series, _) in samples(&after) {
        if series.starts_with("mayfly_http_") {
            assert!(
                !series.contains("/order/") || series.contains("{id}"),
                "{series}"
            );
        }
    }
    let age = value(
        &after,
        "mayfly_crl_age_seconds",
        &[&format!("issuer=\"{}\"", ca.issuer.crl_name())],
    );
    assert!((0.0..60.0).contains(&age), "{age}");
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let mut config = Config::default();
    config.metrics.enabled = false;
    let ca = TestCa::with_config(config).await;
    let reply = ca.request(Method::GET, "/metrics").await;
    reply.expect_problem(404, "malformed");
}

/// The direct API counts its certificates too (a static provisioner: no token needed).
#[tokio::test]
async fn a_direct_api_issuance_is_counted() {
    use mayfly::provisioner::{ProvisionerConfig, StaticProvisionerConfig};
    let mut config = Config::default();
    config.provisioners.insert(
        "dev".into(),
        ProvisionerConfig::Static(StaticProvisionerConfig {
            user: "dev".into(),
            secret: "sixteen-chars-ok".into(),
            ..StaticProvisionerConfig::default()
        }),
    );
    let ca = TestCa::with_config(config).await;
    let issued = |text: &str| value(text, "mayfly_certificates_issued_total", &[]);
    let signed = |text: &str| {
        value(
            text,
            "mayfly_http_requests_total",
            &["endpoint=\"/v1/sign\"", "status=\"201\""],
        )
    };
    let before = scrape(&ca).await;

    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["web.test".to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let pem = params.serialize_request(&key).unwrap().pem().unwrap();
    let body =
        json!({"csr": pem, "provisioner": "dev", "user": "dev", "secret": "sixteen-chars-ok"});
    let reply = ca
        .post_bytes(
            "/v1/sign",
            "application/json",
            body.to_string().into_bytes(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);

    let after = scrape(&ca).await;
    assert!(issued(&after) >= issued(&before) + 1.0, "{after}");
    assert!(signed(&after) >= signed(&before) + 1.0, "{after}");
    assert!(
        value(&after, "mayfly_issuance_duration_seconds_count", &[]) >= 1.0,
        "{after}"
    );
}
