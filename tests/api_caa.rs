//! CAA (RFC 8659, RFC 8657) in process: records served by the FakeResolver decide whether an
//! authorization becomes valid after its challenge passed; a refusal is a `caa` problem on
//! the challenge naming the record.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use mayfly::config::Config;
use mayfly::jose::key_authorization;
use mayfly::validation::caa::CaaRecord;
use mayfly::validation::dns01::digest;
use serde_json::Value;
use support::{Account, NAME, TestCa, urn};

/// The identity the CA answers to in these tests.
const US: &str = "mayfly.test";

async fn ca_with(caa_check: bool) -> TestCa {
    let mut config = Config::default();
    config.acme.caa_identities = vec![US.to_owned()];
    config.acme.caa_check = caa_check;
    TestCa::with_config(config).await
}

fn issue(value: &str) -> CaaRecord {
    CaaRecord::new(0, "issue", value)
}

/// Orders `name`, answers its http-01 challenge correctly and returns the settled challenge.
async fn validate_http01(ca: &TestCa, account: &Account, name: &str) -> Value {
    let (_, order) = ca.new_order(account, &[name]).await;
    let (_, challenge) = ca.first_challenge(account, &order).await;
    ca.serve_key_authorization(account, challenge["token"].as_str().unwrap());
    let url = challenge["url"].as_str().unwrap();
    ca.respond(account, url).await;
    ca.poll_challenge(account, url).await
}

/// Orders the wildcard `*.{base}`, publishes its dns-01 answer and returns the settled
/// challenge.
async fn validate_wildcard(ca: &TestCa, account: &Account, base: &str) -> Value {
    let (_, order) = ca.new_order(account, &[&format!("*.{base}")]).await;
    let authz = ca
        .fetch(account, order["authorizations"][0].as_str().unwrap())
        .await;
    let challenge = authz["challenges"][0].clone();
    assert_eq!(challenge["type"], "dns-01");
    let token = challenge["token"].as_str().unwrap();
    ca.resolver.set_txt(
        &format!("_acme-challenge.{base}"),
        vec![digest(&key_authorization(token, &account.key.jwk()))],
    );
    let url = challenge["url"].as_str().unwrap();
    ca.respond(account, url).await;
    ca.poll_challenge(account, url).await
}

fn assert_valid(challenge: &Value) {
    assert_eq!(challenge["status"], "valid", "{challenge}");
}

/// Asserts a `caa` refusal with exactly `detail`.
fn assert_refused(challenge: &Value, detail: &str) {
    assert_eq!(challenge["status"], "invalid", "{challenge}");
    assert_eq!(challenge["error"]["type"], urn("caa"), "{challenge}");
    assert_eq!(challenge["error"]["status"], 403, "{challenge}");
    assert_eq!(challenge["error"]["detail"], detail, "{challenge}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_caa_records_allow() {
    let ca = ca_with(true).await;
    let account = ca.new_account().await;
    assert_valid(&validate_http01(&ca, &account, NAME).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_naming_us_allows_and_one_naming_another_ca_forbids() {
    let ca = ca_with(true).await;
    let account = ca.new_account().await;
    // At the parent: the climb finds it (RFC 8659 §3).
    ca.resolver.set_caa("example.com", vec![issue(US)]);
    assert_valid(&validate_http01(&ca, &account, NAME).await);

    ca.resolver
        .set_caa("example.com", vec![issue("other-ca.example")]);
    let challenge = validate_http01(&ca, &account, "b.example.com").await;
    assert_refused(
        &challenge,
        "CAA record at example.com \"0 issue \\\"other-ca.example\\\"\" does not name this CA \
         (mayfly.test)",
    );
    assert_eq!(
        challenge["error"]["identifier"]["value"], "b.example.com",
        "{challenge}"
    );
    // The authorization and its order are invalid too.
    let (_, order) = ca.new_order(&account, &["b.example.com"]).await;
    let authz = ca
        .fetch(&account, order["authorizations"][0].as_str().unwrap())
        .await;
    assert_eq!(
        authz["status"], "pending",
        "a failed authorization is not reused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_closest_record_set_wins() {
    let ca = ca_with(true).await;
    let account = ca.new_account().await;
    ca.resolver
        .set_caa("example.com", vec![issue("other-ca.example")]);
    ca.resolver.set_caa(NAME, vec![issue(US)]);
    assert_valid(&validate_http01(&ca, &account, NAME).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounturi_must_be_the_account_url() {
    let ca = ca_with(true).await;
    let account = ca.new_account().await;
    ca.resolver.set_caa(
        "example.com",
        vec![issue(&format!("{US}; accounturi={}", account.url))],
    );
    assert_valid(&validate_http01(&ca, &account, NAME).await);

    let other = ca.new_account().await;
    let challenge = validate_http01(&ca, &other, NAME).await;
    assert_refused(
        &challenge,
        &format!(
            "CAA record at example.com \"0 issue \\\"{US}; accounturi={}\\\"\" allows this CA \
             only for the account {}, not {} (RFC 8657 accounturi)",
            account.url, account.url, other.url
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validationmethods_must_list_the_challenge_type() {
    let ca = ca_with(true).await;
    let account = ca.new_account().await;
    ca.resolver.set_caa(
        "example.com",
        vec![issue(&format!("{US}; validationmethods=dns-01"))],
    );
    let challenge = validate_http01(&ca, &account, NAME).await;
    assert_refused(
        &challenge,
        "CAA record at example.com \"0 issue \\\"mayfly.test; validationmethods=dns-01\\\"\" \
         allows this CA only with the validation methods dns-01, not http-01 (RFC 8657 \
         validationmethods)",
    );
    ca.resolver.set_caa(
        "example.com",
        vec![issue(&format!("{US}; validationmethods=dns-01,http-01"))],
    );
    assert_valid(&validate_http01(&ca, &account, "b.example.com").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuewild_governs_wildcards_only() {
    let ca = ca_with(true).await;
    let account = ca.new_account().await;
    ca.resolver.set_caa(
        "example.com",
        vec![
            issue("other-ca.example"),
            CaaRecord::new(0, "issuewild", US),
        ],
    );
    // A wildcard: the issuewild record applies, and names us.
    assert_valid(&validate_wildcard(&ca, &account, "example.com").await);
    // A plain name: issuewild is ignored, and the issue record names another CA.
    let challenge = validate_http01(&ca, &account, NAME).await;
    assert_refused(
        &challenge,
        "CAA record at example.com \"0 issue \\\"other-ca.example\\\"\" does not name this CA \
         (mayfly.test)",
    );

    // issuewild ";" forbids wildcards even where issue allows us.
    ca.resolver.set_caa(
        "example.org",
        vec![issue(US), CaaRecord::new(0, "issuewild", ";")],
    );
    let challenge = validate_wildcard(&ca, &account, "example.org").await;
    assert_refused(
        &challenge,
        "CAA record at example.org \"0 issuewild \\\";\\\"\" forbids issuance by any CA",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_critical_tag_forbids() {
    let ca = ca_with(true).await;
    let account = ca.new_account().await;
    ca.resolver.set_caa(
        "example.com",
        vec![issue(US), CaaRecord::new(128, "tbs", "unknown")],
    );
    let challenge = validate_http01(&ca, &account, NAME).await;
    assert_refused(
        &challenge,
        "CAA record at example.com \"128 tbs \\\"unknown\\\"\" is marked critical and this CA \
         does not understand its tag",
    );
    // Not critical: ignored.
    ca.resolver.set_caa(
        "example.com",
        vec![issue(US), CaaRecord::new(0, "tbs", "unknown")],
    );
    assert_valid(&validate_http01(&ca, &account, "b.example.com").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_caa_identities_any_issue_record_forbids() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    ca.resolver.set_caa("example.com", vec![issue(US)]);
    let challenge = validate_http01(&ca, &account, NAME).await;
    assert_refused(
        &challenge,
        "CAA record at example.com \"0 issue \\\"mayfly.test\\\"\" names a CA, and this CA has \
         no CAA identity (acme.caa_identities is empty)",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caa_check_off_skips_the_lookup() {
    let ca = ca_with(false).await;
    let account = ca.new_account().await;
    ca.resolver
        .set_caa("example.com", vec![CaaRecord::new(0, "issue", ";")]);
    assert_valid(&validate_http01(&ca, &account, NAME).await);
}
