//! Real ACME clients against a real `mayfly serve`, over http-01, on loopback.
//!
//! Each test starts its own Mayfly and pebble-challtestsrv (the DNS server that resolves every
//! name to 127.0.0.1), obtains a certificate for a distinct name, verifies the chain against
//! Mayfly's root, and checks that Mayfly really looked the name up. One test runs certbot
//! against Pebble to check the harness itself; the other Pebble runs are `#[ignore]`d and serve
//! to debug the harness (`cargo nextest run -p acme-tests --run-ignored only`).

use acme_tests::clients::{certbot, instant, lego};
use acme_tests::postgres;
use acme_tests::verify::verify_chain;
use acme_tests::{AcmeTarget, Environment};

#[tokio::test(flavor = "multi_thread")]
async fn certbot_http01() {
    let env = Environment::mayfly().await.expect("mayfly starts");
    issue_with_certbot(&env, "certbot.mayfly.test").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lego_http01() {
    let env = Environment::mayfly().await.expect("mayfly starts");
    issue_with_lego(&env, "lego.mayfly.test").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn instant_acme_http01() {
    let env = Environment::mayfly().await.expect("mayfly starts");
    issue_with_instant_acme(&env, "instant-acme.mayfly.test").await;
}

/// The instant-acme run on PostgreSQL, in a database of its own; skipped without
/// `MAYFLY_TEST_POSTGRES_URL`.
#[tokio::test(flavor = "multi_thread")]
async fn instant_acme_http01_postgres() {
    let Ok(admin_url) = std::env::var(postgres::URL_ENV) else {
        eprintln!("skipped: {} is not set", postgres::URL_ENV);
        return;
    };
    let env = Environment::mayfly_on_postgres(&admin_url)
        .await
        .expect("mayfly starts on PostgreSQL");
    issue_with_instant_acme(&env, "postgres.instant-acme.mayfly.test").await;
}

/// Harness self-check: certbot obtains a certificate from Pebble through the same harness.
#[tokio::test(flavor = "multi_thread")]
async fn harness_self_check_certbot_against_pebble() {
    let env = Environment::pebble().await.expect("pebble starts");
    issue_with_certbot(&env, "certbot.pebble.test").await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "harness debugging: lego against Pebble"]
async fn harness_lego_against_pebble() {
    let env = Environment::pebble().await.expect("pebble starts");
    issue_with_lego(&env, "lego.pebble.test").await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "harness debugging: instant-acme against Pebble"]
async fn harness_instant_acme_against_pebble() {
    let env = Environment::pebble().await.expect("pebble starts");
    issue_with_instant_acme(&env, "instant-acme.pebble.test").await;
}

async fn issue_with_certbot(env: &Environment, name: &str) {
    let work = tempfile::tempdir().expect("temp dir");
    let chain = certbot::issue(env.target(), name, work.path())
        .await
        .expect("certbot obtains a certificate");
    check_issued(env, &chain, name).await;
}

async fn issue_with_lego(env: &Environment, name: &str) {
    let work = tempfile::tempdir().expect("temp dir");
    let chain = lego::issue(env.target(), name, work.path())
        .await
        .expect("lego obtains a certificate");
    check_issued(env, &chain, name).await;
}

async fn issue_with_instant_acme(env: &Environment, name: &str) {
    let work = tempfile::tempdir().expect("temp dir");
    let issued = instant::issue(env.target(), name, work.path())
        .await
        .expect("instant-acme obtains a certificate");
    assert!(
        issued
            .challenge_requests
            .iter()
            .any(|path| path.starts_with("/.well-known/acme-challenge/")),
        "the server never fetched the http-01 response; requests: {:?}",
        issued.challenge_requests
    );
    check_issued(env, &issued.fullchain, name).await;
}

/// The chain verifies for exactly `name`, and the server resolved `name` to validate it.
async fn check_issued(env: &Environment, chain: &std::path::Path, name: &str) {
    let AcmeTarget { issuer_root, .. } = env.target();
    verify_chain(chain, issuer_root, &[name]).expect("the issued chain verifies");
    let queries = env
        .challtestsrv()
        .dns_queries(name)
        .await
        .expect("DNS history is readable");
    assert!(
        !queries.is_empty(),
        "the server never resolved {name}, so it cannot have validated it"
    );
}

/// The share of valid nonces a server rejects on purpose in the tests below, as the issue
/// asks: real clients must retry a `badNonce` and still succeed.
const NONCE_REJECT: (&str, &str) = ("MAYFLY__TESTING__NONCE_REJECT_PERCENT", "15");

#[tokio::test(flavor = "multi_thread")]
async fn certbot_survives_nonce_rejection() {
    let env = Environment::mayfly_with(&[NONCE_REJECT])
        .await
        .expect("mayfly starts");
    issue_with_certbot(&env, "certbot.nonce.mayfly.test").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lego_survives_nonce_rejection() {
    let env = Environment::mayfly_with(&[NONCE_REJECT])
        .await
        .expect("mayfly starts");
    issue_with_lego(&env, "lego.nonce.mayfly.test").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn instant_acme_survives_nonce_rejection() {
    let env = Environment::mayfly_with(&[NONCE_REJECT])
        .await
        .expect("mayfly starts");
    issue_with_instant_acme(&env, "instant-acme.nonce.mayfly.test").await;
}

/// certbot's `renew --force-renewal` replaces a certificate with a new one from the same
/// account, reading the server and authenticator from its renewal configuration.
#[tokio::test(flavor = "multi_thread")]
async fn certbot_renew_force_renewal() {
    let env = Environment::mayfly().await.expect("mayfly starts");
    let name = "renew.certbot.mayfly.test";
    let work = tempfile::tempdir().expect("temp dir");
    let first = certbot::issue(env.target(), name, work.path())
        .await
        .expect("certbot obtains a certificate");
    let first_serial = leaf_serial(&first);
    let renewed = certbot::renew_force(env.target(), name, work.path())
        .await
        .expect("certbot renews");
    check_issued(&env, &renewed, name).await;
    assert_ne!(
        leaf_serial(&renewed),
        first_serial,
        "renewal issued a new certificate"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lego_renew() {
    let env = Environment::mayfly().await.expect("mayfly starts");
    let name = "renew.lego.mayfly.test";
    let work = tempfile::tempdir().expect("temp dir");
    let first = lego::issue(env.target(), name, work.path())
        .await
        .expect("lego obtains a certificate");
    let first_serial = leaf_serial(&first);
    let renewed = lego::renew(env.target(), name, work.path())
        .await
        .expect("lego renews");
    check_issued(&env, &renewed, name).await;
    assert_ne!(
        leaf_serial(&renewed),
        first_serial,
        "renewal issued a new certificate"
    );
}

/// The serial of the first certificate in a PEM chain file, as hex.
fn leaf_serial(chain: &std::path::Path) -> String {
    let pem = std::fs::read(chain).expect("chain file");
    let (_, block) = x509_parser::pem::parse_x509_pem(&pem).expect("PEM");
    let (_, cert) = x509_parser::parse_x509_certificate(&block.contents).expect("certificate");
    cert.raw_serial_as_string()
}
