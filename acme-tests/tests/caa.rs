//! Issue 4, CAA (RFC 8659, RFC 8657) against a real `mayfly serve`: pebble-challtestsrv serves
//! the CAA records (its `/add-caa` management endpoint), Mayfly looks them up through its
//! configured resolver after the challenge passed, and instant-acme sees the authorization
//! become valid or the challenge fail with `caa`.
//!
//! challtestsrv always sends flags 0, so an unknown *critical* tag cannot be served from
//! here; that case is covered in process (tests/api_caa.rs) with the FakeResolver.

use acme_tests::Environment;
use acme_tests::clients::instant::ChallengeServer;
use acme_tests::clients::instant_ari::{Client, Solver, Validated};
use instant_acme::{Identifier, Order};

/// The issuer domain name Mayfly answers to in these tests.
const US: &str = "mayfly.test";
/// DNS query type number of CAA, as challtestsrv records it.
const QTYPE_CAA: u16 = 257;

async fn mayfly() -> Environment {
    Environment::mayfly_with(&[("MAYFLY__ACME__CAA_IDENTITIES", "[\"mayfly.test\"]")])
        .await
        .expect("mayfly starts")
}

fn dns(name: &str) -> Identifier {
    Identifier::Dns(name.to_owned())
}

async fn order(client: &Client, name: &str) -> Order {
    client
        .order(&[dns(name)], None)
        .await
        .expect("the order is created")
}

fn assert_ready(outcome: &Validated) {
    assert!(matches!(outcome, Validated::Ready), "{outcome:?}");
}

/// The challenge failed with `caa` and exactly `detail`.
fn assert_caa(outcome: &Validated, detail: &str) {
    match outcome {
        Validated::Invalid {
            error_type,
            detail: got,
        } => {
            assert_eq!(
                error_type.as_deref(),
                Some("urn:ietf:params:acme:error:caa"),
                "{outcome:?}"
            );
            assert_eq!(got.as_deref(), Some(detail), "{outcome:?}");
        }
        Validated::Ready => panic!("expected a caa refusal, the order is ready"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuance_allowed_and_forbidden() {
    let env = mayfly().await;
    let dns_server = env.challtestsrv();
    let client = Client::new(env.target()).await.expect("an account");
    let http = ChallengeServer::start(env.target().http01_port)
        .await
        .expect("the http-01 server starts");

    // No CAA anywhere: allowed, and Mayfly did ask.
    dns_server.clear_dns_queries("none.example").await.unwrap();
    let mut free = order(&client, "none.example").await;
    let outcome = client
        .validate(&mut free, &Solver::Http01(&http))
        .await
        .unwrap();
    assert_ready(&outcome);
    let queries = dns_server.dns_queries("none.example").await.unwrap();
    assert!(
        queries.iter().any(|q| q.qtype == QTYPE_CAA),
        "no CAA query for none.example: {queries:?}"
    );
    // The certificate is issued.
    client
        .finalize(&mut free, &["none.example"])
        .await
        .expect("issued");

    // A record at the parent naming us: allowed (RFC 8659 §3 climbing).
    dns_server
        .add_caa("allowed.example", &[("issue", US)])
        .await
        .unwrap();
    let mut allowed = order(&client, "www.allowed.example").await;
    assert_ready(
        &client
            .validate(&mut allowed, &Solver::Http01(&http))
            .await
            .unwrap(),
    );

    // A record naming another CA: forbidden, and the detail names the record.
    dns_server
        .add_caa("forbidden.example", &[("issue", "other-ca.example")])
        .await
        .unwrap();
    let mut forbidden = order(&client, "www.forbidden.example").await;
    let outcome = client
        .validate(&mut forbidden, &Solver::Http01(&http))
        .await
        .unwrap();
    assert_caa(
        &outcome,
        "CAA record at forbidden.example \"0 issue \\\"other-ca.example\\\"\" does not name \
         this CA (mayfly.test)",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounturi_matching_and_not() {
    let env = mayfly().await;
    let dns_server = env.challtestsrv();
    let owner = Client::new(env.target()).await.expect("an account");
    let other = Client::new(env.target()).await.expect("another account");
    let http = ChallengeServer::start(env.target().http01_port)
        .await
        .expect("the http-01 server starts");
    let value = format!("{US}; accounturi={}", owner.url());
    dns_server
        .add_caa("bound.example", &[("issue", &value)])
        .await
        .unwrap();

    let mut mine = order(&owner, "bound.example").await;
    assert_ready(
        &owner
            .validate(&mut mine, &Solver::Http01(&http))
            .await
            .unwrap(),
    );

    let mut theirs = order(&other, "bound.example").await;
    let outcome = other
        .validate(&mut theirs, &Solver::Http01(&http))
        .await
        .unwrap();
    assert_caa(
        &outcome,
        &format!(
            "CAA record at bound.example \"0 issue \\\"{value}\\\"\" allows this CA only for \
             the account {}, not {} (RFC 8657 accounturi)",
            owner.url(),
            other.url()
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuewild_governs_the_wildcard() {
    let env = mayfly().await;
    let dns_server = env.challtestsrv();
    let client = Client::new(env.target()).await.expect("an account");
    dns_server
        .add_caa(
            "wild.example",
            &[("issue", "other-ca.example"), ("issuewild", US)],
        )
        .await
        .unwrap();

    // The wildcard (dns-01): issuewild names us.
    let mut wildcard = order(&client, "*.wild.example").await;
    assert_ready(
        &client
            .validate(&mut wildcard, &Solver::Dns01(dns_server))
            .await
            .unwrap(),
    );
    client
        .finalize(&mut wildcard, &["*.wild.example"])
        .await
        .expect("the wildcard is issued");

    // The base name: issuewild does not apply, and issue names another CA.
    let mut base = order(&client, "wild.example").await;
    let outcome = client
        .validate(&mut base, &Solver::Dns01(dns_server))
        .await
        .unwrap();
    assert_caa(
        &outcome,
        "CAA record at wild.example \"0 issue \\\"other-ca.example\\\"\" does not name this CA \
         (mayfly.test)",
    );

    // issuewild ";" forbids wildcards where issue allows us.
    dns_server
        .add_caa("tame.example", &[("issue", US), ("issuewild", ";")])
        .await
        .unwrap();
    let mut tame = order(&client, "*.tame.example").await;
    let outcome = client
        .validate(&mut tame, &Solver::Dns01(dns_server))
        .await
        .unwrap();
    assert_caa(
        &outcome,
        "CAA record at tame.example \"0 issuewild \\\";\\\"\" forbids issuance by any CA",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caa_check_off_ignores_the_records() {
    let env = Environment::mayfly_with(&[("MAYFLY__ACME__CAA_CHECK", "false")])
        .await
        .expect("mayfly starts");
    let client = Client::new(env.target()).await.expect("an account");
    let http = ChallengeServer::start(env.target().http01_port)
        .await
        .expect("the http-01 server starts");
    env.challtestsrv()
        .add_caa("closed.example", &[("issue", ";")])
        .await
        .unwrap();
    let mut closed = order(&client, "closed.example").await;
    assert_ready(
        &client
            .validate(&mut closed, &Solver::Http01(&http))
            .await
            .unwrap(),
    );
}
