//! Rate limits (issue 7) in process under the FakeClock: each limit is hit (429 `rateLimited`
//! with an exact `Retry-After` and a detail naming the limit), then recovered from by moving
//! the clock; the ARI replacement exemption; the defaults and normal flows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use mayfly::config::{Config, RateLimitsConfig};
use mayfly::jose::{KeyRef, SigningKey, sign_jws};
use mayfly::policy::renewal::CertId;
use serde_json::{Value, json};
use support::{Account, JOSE, NAME, Reply, TestCa, csr, url};
use time::Duration;

/// A configuration with only these limits on (0 is off).
fn limits(accounts: u32, orders: u32, failed_validations: u32) -> Config {
    Config {
        rate_limits: RateLimitsConfig {
            new_accounts_per_ip_per_hour: accounts,
            new_orders_per_account_per_hour: orders,
            failed_validations_per_identifier_per_account_per_hour: failed_validations,
            trusted_proxies: Vec::new(),
        },
        ..Config::default()
    }
}

/// newAccount with `key`, sent from `peer` (the listener's ConnectInfo) with these
/// `X-Forwarded-For` lines.
async fn new_account_from(
    ca: &TestCa,
    key: &SigningKey,
    payload: &Value,
    peer: &str,
    forwarded_for: &[&str],
) -> Reply {
    let path = "/acme/new-account";
    let nonce = ca.nonce().await;
    let jws = sign_jws(key, KeyRef::Jwk, Some(&nonce), &url(path), Some(payload));
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, JOSE);
    for value in forwarded_for {
        request = request.header("x-forwarded-for", *value);
    }
    let mut request = request.body(Body::from(jws.to_string())).unwrap();
    let addr = SocketAddr::new(peer.parse().unwrap(), 50000);
    request.extensions_mut().insert(ConnectInfo(addr));
    ca.send(request).await
}

/// Asserts a 429 `rateLimited` with exactly this detail and `Retry-After`.
fn assert_limited(reply: &Reply, detail: &str, retry_after: u64) {
    reply.expect_problem_detail(429, "rateLimited", detail);
    assert_eq!(
        reply.header("retry-after"),
        Some(retry_after.to_string().as_str()),
        "Retry-After"
    );
}

fn account_id(account: &Account) -> &str {
    account.url.rsplit('/').next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_accounts_per_ip_are_limited_and_recover() {
    let ca = TestCa::with_config(limits(2, 0, 0)).await;
    let peer = "192.0.2.10";
    let first = SigningKey::generate_p256();
    new_account_from(&ca, &first, &json!({}), peer, &[])
        .await
        .expect_json(StatusCode::CREATED);
    ca.clock.advance(Duration::minutes(10));
    new_account_from(&ca, &SigningKey::generate_p256(), &json!({}), peer, &[])
        .await
        .expect_json(StatusCode::CREATED);
    ca.clock.advance(Duration::minutes(10));

    let detail = |seconds: u64| {
        format!(
            "too many new accounts from this address ({peer}): the limit is 2 per hour \
             (rate_limits.new_accounts_per_ip_per_hour); retry after {seconds} seconds"
        )
    };
    // The oldest creation leaves the hour 40 minutes from now.
    let third = SigningKey::generate_p256();
    let refused = new_account_from(&ca, &third, &json!({}), peer, &[]).await;
    assert_limited(&refused, &detail(2400), 2400);
    // X-Forwarded-For from a peer that is not a trusted proxy changes nothing.
    let spoofed = new_account_from(&ca, &third, &json!({}), peer, &["198.51.100.7"]).await;
    assert_limited(&spoofed, &detail(2400), 2400);

    // Lookups are not creations: an existing key still gets its account, and
    // onlyReturnExisting for an unknown key still gets accountDoesNotExist.
    new_account_from(&ca, &first, &json!({}), peer, &[])
        .await
        .expect_json(StatusCode::OK);
    new_account_from(&ca, &third, &json!({"onlyReturnExisting": true}), peer, &[])
        .await
        .expect_problem(400, "accountDoesNotExist");
    // Another address has its own count.
    new_account_from(&ca, &third, &json!({}), "192.0.2.11", &[])
        .await
        .expect_json(StatusCode::CREATED);

    // One second early: still refused, for one second.
    ca.clock.advance(Duration::seconds(2399));
    let fourth = SigningKey::generate_p256();
    let early = new_account_from(&ca, &fourth, &json!({}), peer, &[]).await;
    assert_limited(&early, &detail(1), 1);
    ca.clock.advance(Duration::seconds(1));
    new_account_from(&ca, &fourth, &json!({}), peer, &[])
        .await
        .expect_json(StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_orders_per_account_are_limited_and_recover() {
    let ca = TestCa::with_config(limits(0, 3, 0)).await;
    let account = ca.new_account().await;
    for _ in 0..3 {
        ca.new_order(&account, &[NAME]).await;
        ca.clock.advance(Duration::minutes(5));
    }
    let detail = |seconds: u64| {
        format!(
            "too many new orders by this account (account {}): the limit is 3 per hour \
             (rate_limits.new_orders_per_account_per_hour); retry after {seconds} seconds",
            account_id(&account)
        )
    };
    let refused = ca.new_order_reply(&account, &[NAME]).await;
    assert_limited(&refused, &detail(2700), 2700);
    // Another account has its own count.
    let other = ca.new_account().await;
    ca.new_order(&other, &[NAME]).await;

    ca.clock.advance(Duration::seconds(2699));
    assert_limited(&ca.new_order_reply(&account, &[NAME]).await, &detail(1), 1);
    ca.clock.advance(Duration::seconds(1));
    ca.new_order(&account, &[NAME]).await;
    // The slot freed by the first order is taken again; the second frees five minutes later.
    assert_limited(
        &ca.new_order_reply(&account, &[NAME]).await,
        &detail(300),
        300,
    );
}

/// Makes a fresh order's http-01 challenge for `name` fail; returns when it is invalid.
async fn fail_validation(ca: &TestCa, account: &Account, name: &str) {
    let (_, order) = ca.new_order(account, &[name]).await;
    let (_, challenge) = ca.first_challenge(account, &order).await;
    ca.serve(
        challenge["token"].as_str().unwrap(),
        StatusCode::NOT_FOUND,
        "",
    );
    let challenge_url = challenge["url"].as_str().unwrap();
    ca.respond(account, challenge_url).await;
    let done = ca.poll_challenge(account, challenge_url).await;
    assert_eq!(done["status"], "invalid", "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_validations_per_identifier_are_limited_and_recover() {
    let ca = TestCa::with_config(limits(0, 0, 2)).await;
    let account = ca.new_account().await;
    fail_validation(&ca, &account, NAME).await;
    ca.clock.advance(Duration::minutes(1));
    fail_validation(&ca, &account, NAME).await;
    ca.clock.advance(Duration::minutes(1));

    let detail = |seconds: u64| {
        format!(
            "too many failed validations of this identifier by this account ({NAME}): the \
             limit is 2 per hour \
             (rate_limits.failed_validations_per_identifier_per_account_per_hour); retry \
             after {seconds} seconds"
        )
    };
    let refused = ca.new_order_reply(&account, &["b.example.com", NAME]).await;
    assert_limited(&refused, &detail(3480), 3480);
    assert_eq!(
        refused.json()["identifier"],
        json!({"type": "dns", "value": NAME})
    );
    // newAuthz for the identifier is refused too.
    let authz = ca
        .account_post(
            &account,
            "/acme/new-authz",
            Some(&json!({"identifier": {"type": "dns", "value": NAME}})),
        )
        .await;
    assert_limited(&authz, &detail(3480), 3480);
    // Other identifiers of the account, and other accounts, are not affected.
    ca.new_order(&account, &["b.example.com"]).await;
    let other = ca.new_account().await;
    ca.new_order(&other, &[NAME]).await;

    ca.clock.advance(Duration::seconds(3480));
    let (_, order) = ca.ready_order(&account, &[NAME]).await;
    let order = ca
        .finalize(&account, &order, &csr(&[NAME]))
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(order["status"], "valid");
}

/// A certificate `account` obtained for `names`, as its ARI id.
async fn issue(ca: &TestCa, account: &Account, names: &[&str]) -> String {
    let (_, order) = ca.ready_order(account, names).await;
    let order = ca
        .finalize(account, &order, &csr(names))
        .await
        .expect_json(StatusCode::OK);
    let chain = ca
        .post_as_get(account, order["certificate"].as_str().unwrap())
        .await;
    assert_eq!(chain.status, StatusCode::OK);
    let der = support::pem_certificates(&chain.body).remove(0);
    CertId::from_certificate_der(&der).unwrap().to_string()
}

async fn new_order_replacing(ca: &TestCa, account: &Account, id: &str) -> Reply {
    ca.account_post(
        account,
        "/acme/new-order",
        Some(&json!({"identifiers": [{"type": "dns", "value": NAME}], "replaces": id})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ari_replacement_inside_its_window_is_exempt() {
    let ca = TestCa::with_config(limits(0, 2, 0)).await;
    let account = ca.new_account().await;
    let id = issue(&ca, &account, &[NAME]).await;
    ca.new_order(&account, &[NAME]).await;
    // Before the window opens (about half of the one-day lifetime), a replacement counts.
    let early = new_order_replacing(&ca, &account, &id).await;
    early.expect_problem(429, "rateLimited");

    // Inside the window: the hour has passed too, so use up the limit again first.
    let renewal = ca
        .request(Method::GET, &format!("/acme/renewal-info/{id}"))
        .await
        .expect_json(StatusCode::OK);
    let start = time::OffsetDateTime::parse(
        renewal["suggestedWindow"]["start"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    ca.clock.advance(start - ca.now() + Duration::seconds(1));
    ca.new_order(&account, &[NAME]).await;
    ca.new_order(&account, &[NAME]).await;
    ca.new_order_reply(&account, &[NAME])
        .await
        .expect_problem(429, "rateLimited");
    let exempt = new_order_replacing(&ca, &account, &id).await;
    assert_eq!(
        exempt.expect_json(StatusCode::CREATED)["replaces"],
        id.as_str()
    );
    // …and it took no slot.
    ca.new_order_reply(&account, &[NAME])
        .await
        .expect_problem(429, "rateLimited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_are_finite_and_normal_flows_stay_under_them() {
    let defaults = Config::default().rate_limits;
    assert_eq!(defaults.new_accounts_per_ip_per_hour, 10);
    assert_eq!(defaults.new_orders_per_account_per_hour, 300);
    assert_eq!(
        defaults.failed_validations_per_identifier_per_account_per_hour,
        5
    );
    assert!(defaults.trusted_proxies.is_empty());

    // One client: an account, a failed validation and a retry, then a certificate and a few
    // more orders, all within one hour.
    let ca = TestCa::new().await;
    let key = SigningKey::generate_p256();
    let created = new_account_from(&ca, &key, &json!({}), "192.0.2.20", &[]).await;
    created.expect_json(StatusCode::CREATED);
    let account = Account {
        key,
        url: created.location(),
    };
    fail_validation(&ca, &account, NAME).await;
    issue(&ca, &account, &[NAME]).await;
    for _ in 0..20 {
        ca.new_order(&account, &[NAME, "b.example.com"]).await;
    }
}
