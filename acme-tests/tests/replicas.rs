//! Two `mayfly serve` replicas on one PostgreSQL database and one CA (ARCHITECTURE decision 2:
//! replicas share nothing but the database; a nonce issued by one replica is accepted once,
//! and only once, by any replica; issuing a nonce does not write to the database).
//!
//! A hand-rolled ACME client (`acme_tests::client`) alternates between the replicas on every
//! request, re-basing each URL on the replica it sends the next request to. Every test is
//! skipped, with a line on stderr, when `MAYFLY_TEST_POSTGRES_URL` is not set (`acme-tests/run`
//! always sets it).

use std::collections::HashSet;
use std::time::Instant;

use acme_tests::client::{AcmeResponse, NEW_ACCOUNT_PATH, csr_b64};
use acme_tests::postgres;
use acme_tests::replicas::ReplicaPair;
use acme_tests::verify::verify_pem;
use mayfly::jose::{KeyRef, SigningKey, sign_jws};
use reqwest::StatusCode;
use serde_json::json;

const A: usize = 0;
const B: usize = 1;
/// How many nonces the no-write test fetches.
const NONCES_FETCHED: usize = 20;
/// How many nonces are raced between the replicas.
const NONCE_RACES: usize = 10;
/// How many orders are finalized on both replicas at once.
const FINALIZE_RACES: usize = 3;
/// Every table of migrations/postgres/0001_initial.sql.
const TABLES: [&str; 8] = [
    "settings",
    "nonces",
    "accounts",
    "authorizations",
    "challenges",
    "orders",
    "order_authorizations",
    "certificates",
];

/// The admin URL, or `None` (after printing why) when the test must be skipped.
fn postgres_url() -> Option<String> {
    match std::env::var(postgres::URL_ENV) {
        Ok(url) => Some(url),
        Err(_) => {
            eprintln!("skipped: {} is not set", postgres::URL_ENV);
            None
        }
    }
}

async fn start_pair(admin_url: &str) -> ReplicaPair {
    let started = Instant::now();
    let pair = ReplicaPair::start(admin_url)
        .await
        .expect("two replicas start on one database");
    eprintln!(
        "two replicas up on {:?} in {:?}",
        pair.bases(),
        started.elapsed()
    );
    pair
}

fn root_pem(pair: &ReplicaPair) -> Vec<u8> {
    std::fs::read(pair.root_ca()).expect("the root is readable")
}

/// `certificates` rows belonging to the order with id `order_id`.
async fn certificates_of(pair: &ReplicaPair, order_id: &str) -> u64 {
    assert!(
        order_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "unexpected order id {order_id:?}"
    );
    pair.count(&format!("certificates WHERE order_id = '{order_id}'"))
        .await
        .expect("certificates are countable")
}

/// The row count of every table, in [`TABLES`] order.
async fn table_counts(pair: &ReplicaPair) -> Vec<(&'static str, u64)> {
    let mut counts = Vec::new();
    for table in TABLES {
        counts.push((
            table,
            pair.count(table).await.expect("a table is countable"),
        ));
    }
    counts
}

fn assert_bad_nonce(response: &AcmeResponse, what: &str) {
    assert_eq!(
        (response.status, response.problem_type().as_deref()),
        (StatusCode::BAD_REQUEST, Some("badNonce")),
        "{what}: {response}"
    );
    assert!(
        response.nonce().is_some(),
        "{what}: a badNonce answer must carry a fresh nonce (RFC 8555 §6.5)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn alternating_client_completes_an_order_across_two_replicas() {
    let Some(admin_url) = postgres_url() else {
        return;
    };
    let pair = start_pair(&admin_url).await;
    let name = "alternating.replicas.mayfly.test";
    let started = Instant::now();
    let mut client = pair.acme_client().expect("an HTTPS client");
    client.new_account().await.expect("newAccount");
    let issued = client
        .issue(&[name], pair.challenge_server())
        .await
        .expect("the alternating client obtains a certificate");
    eprintln!(
        "issued across two replicas in {:?} ({} requests)",
        started.elapsed(),
        client.trace().len()
    );

    verify_pem(issued.chain_pem.as_bytes(), &root_pem(&pair), &[name])
        .expect("the chain verifies against the shared root");

    // Every request went to the other replica than the one before, and every POST carried
    // the nonce the other replica had just issued.
    let trace = client.trace().to_vec();
    for (index, exchange) in trace.iter().enumerate() {
        assert_eq!(
            exchange.replica,
            index % 2,
            "request {index} did not alternate: {trace:#?}"
        );
        if exchange.method == "POST" {
            assert_eq!(
                exchange.nonce_from,
                Some(1 - exchange.replica),
                "request {index} did not use the other replica's nonce: {trace:#?}"
            );
        }
    }
    for replica in [A, B] {
        let posts = trace
            .iter()
            .filter(|exchange| exchange.replica == replica && exchange.method == "POST")
            .count();
        assert!(
            posts >= 3,
            "replica {replica} served only {posts} POSTs: {trace:#?}"
        );
    }

    // Validation really happened: a replica resolved the name and fetched the response.
    let queries = pair
        .challtestsrv()
        .dns_queries(name)
        .await
        .expect("DNS history is readable");
    assert!(!queries.is_empty(), "no replica resolved {name}");
    assert!(
        pair.challenge_server()
            .requests()
            .iter()
            .any(|path| path.starts_with("/.well-known/acme-challenge/")),
        "no replica fetched the http-01 response"
    );

    // Both replicas serve the same certificate, and the database holds exactly one.
    let mut served_by = HashSet::new();
    for _ in [A, B] {
        let response = client
            .post(&issued.certificate_path, None)
            .await
            .expect("certificate download")
            .expect_status(StatusCode::OK)
            .expect("certificate download succeeds");
        assert_eq!(
            response.text(),
            issued.chain_pem,
            "replica {} serves another chain",
            response.replica
        );
        served_by.insert(response.replica);
    }
    assert_eq!(served_by, HashSet::from([A, B]));
    assert_eq!(certificates_of(&pair, &issued.order_id).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn nonce_from_one_replica_is_accepted_once_by_either() {
    let Some(admin_url) = postgres_url() else {
        return;
    };
    let pair = start_pair(&admin_url).await;
    let started = Instant::now();
    let mut client = pair.acme_client().expect("an HTTPS client");
    client.new_account().await.expect("newAccount");
    let account = client
        .account_path()
        .expect("the account exists")
        .to_owned();

    // Issued by one replica, used at the other: accepted; replayed at either: badNonce.
    for (issuer, other) in [(A, B), (B, A)] {
        let nonce = client.head_nonce_at(issuer).await.expect("a nonce");
        let used = client
            .post_at(other, &account, &nonce, Some(issuer), None)
            .await
            .expect("POST-as-GET account");
        assert_eq!(
            used.status,
            StatusCode::OK,
            "a nonce from replica {issuer} used at replica {other}: {used}"
        );
        for replay_at in [issuer, other] {
            let replayed = client
                .post_at(replay_at, &account, &nonce, Some(issuer), None)
                .await
                .expect("POST-as-GET account");
            assert_bad_nonce(
                &replayed,
                &format!("a nonce from replica {issuer}, used at {other}, replayed at {replay_at}"),
            );
        }
    }

    // The fresh nonce in a badNonce answer is good at the other replica (RFC 8555 §6.5).
    let nonce = client.head_nonce_at(A).await.expect("a nonce");
    let used = client
        .post_at(B, &account, &nonce, Some(A), None)
        .await
        .expect("POST-as-GET account");
    assert_eq!(used.status, StatusCode::OK, "{used}");
    let refused = client
        .post_at(A, &account, &nonce, Some(A), None)
        .await
        .expect("POST-as-GET account");
    assert_bad_nonce(&refused, "a replay");
    let fresh = refused.nonce().expect("checked above");
    let retried = client
        .post_at(B, &account, &fresh, Some(A), None)
        .await
        .expect("POST-as-GET account");
    assert_eq!(
        retried.status,
        StatusCode::OK,
        "the nonce from a badNonce answer at A, used at B: {retried}"
    );

    // The same nonce sent to both replicas at once: exactly one accepts it.
    let mut outcomes = Vec::new();
    for race in 0..NONCE_RACES {
        let issuer = race % 2;
        let nonce = client.head_nonce_at(issuer).await.expect("a nonce");
        let jws_a = client
            .signed_request(A, &account, &nonce, None)
            .expect("JWS for A");
        let jws_b = client
            .signed_request(B, &account, &nonce, None)
            .expect("JWS for B");
        let (at_a, at_b) = tokio::join!(
            client.send(A, &account, &jws_a),
            client.send(B, &account, &jws_b)
        );
        let answers = [at_a.expect("POST to A"), at_b.expect("POST to B")];
        let accepted: Vec<&AcmeResponse> = answers
            .iter()
            .filter(|answer| answer.status == StatusCode::OK)
            .collect();
        assert_eq!(
            accepted.len(),
            1,
            "race {race}: a nonce from replica {issuer} sent to both: {} / {}",
            answers[0],
            answers[1]
        );
        let refused = answers
            .iter()
            .find(|answer| answer.status != StatusCode::OK)
            .expect("one was refused");
        assert_bad_nonce(refused, &format!("race {race}, the loser"));
        outcomes.push(accepted[0].replica);
    }
    eprintln!(
        "nonce checks done in {:?}; races won by replicas {outcomes:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn issuing_nonces_writes_nothing() {
    let Some(admin_url) = postgres_url() else {
        return;
    };
    let pair = start_pair(&admin_url).await;
    let mut client = pair.acme_client().expect("an HTTPS client");

    let before = table_counts(&pair).await;
    let started = Instant::now();
    let mut nonces = Vec::new();
    for _ in 0..NONCES_FETCHED {
        nonces.push(client.fetch_nonce().await.expect("HEAD new-nonce"));
    }
    eprintln!(
        "{NONCES_FETCHED} nonces from alternating replicas in {:?}",
        started.elapsed()
    );
    let distinct: HashSet<&String> = nonces.iter().collect();
    assert_eq!(distinct.len(), NONCES_FETCHED, "nonces repeat: {nonces:?}");
    let trace = client.trace();
    for replica in [A, B] {
        assert_eq!(
            trace
                .iter()
                .filter(|exchange| exchange.replica == replica)
                .count(),
            NONCES_FETCHED / 2,
            "the nonces did not come from both replicas: {trace:#?}"
        );
    }
    let after = table_counts(&pair).await;
    assert_eq!(
        before, after,
        "issuing {NONCES_FETCHED} nonces changed the database"
    );

    // The control: redeeming one of those nonces (issued by A, at B) is one row in `nonces`,
    // so the count above would have seen a write.
    let nonce = &nonces[0];
    assert!(
        nonce
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "a nonce is not base64url: {nonce:?}"
    );
    let response = client
        .post_at(
            B,
            NEW_ACCOUNT_PATH,
            nonce,
            Some(A),
            Some(&json!({"termsOfServiceAgreed": true})),
        )
        .await
        .expect("newAccount");
    assert_eq!(response.status, StatusCode::CREATED, "{response}");
    let redeemed = pair
        .count(&format!("nonces WHERE nonce = '{nonce}'"))
        .await
        .expect("nonces are countable");
    assert_eq!(redeemed, 1, "the redeemed nonce is not recorded");
    let nonces_before = before
        .iter()
        .find(|(table, _)| *table == "nonces")
        .map_or(0, |(_, count)| *count);
    assert_eq!(
        pair.count("nonces").await.expect("nonces are countable"),
        nonces_before + 1,
        "redeeming one nonce should add exactly one row"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_finalize_on_two_replicas_issues_one_certificate() {
    let Some(admin_url) = postgres_url() else {
        return;
    };
    let pair = start_pair(&admin_url).await;
    let root = root_pem(&pair);
    let mut client = pair.acme_client().expect("an HTTPS client");
    client.new_account().await.expect("newAccount");

    let mut outcomes = Vec::new();
    for race in 0..FINALIZE_RACES {
        let started = Instant::now();
        let name = format!("race{race}.replicas.mayfly.test");
        let (order_path, order) = client.new_order(&[&name]).await.expect("newOrder");
        let order_replica = client.trace().last().map_or(A, |exchange| exchange.replica);
        let ready = client
            .authorize_http01(&order, order_replica, &order_path, pair.challenge_server())
            .await
            .expect("the order becomes ready");
        let ready_replica = client.trace().last().map_or(A, |exchange| exchange.replica);
        let finalize_path = client
            .path_from(
                ready["finalize"].as_str().expect("a finalize URL"),
                ready_replica,
            )
            .expect("the finalize URL is on the replica's base");
        let order_id = order_path
            .rsplit('/')
            .next()
            .expect("an order id")
            .to_owned();

        // One finalize to each replica, each with its own nonce and its own CSR key, at once.
        let nonce_a = client.head_nonce_at(A).await.expect("a nonce from A");
        let nonce_b = client.head_nonce_at(B).await.expect("a nonce from B");
        let finalize = |replica: usize, nonce: &str| {
            let csr = csr_b64(&[&name]).expect("a CSR");
            client
                .signed_request(replica, &finalize_path, nonce, Some(&json!({"csr": csr})))
                .expect("a finalize JWS")
        };
        let jws_a = finalize(A, &nonce_a);
        let jws_b = finalize(B, &nonce_b);
        let (at_a, at_b) = tokio::join!(
            client.send(A, &finalize_path, &jws_a),
            client.send(B, &finalize_path, &jws_b)
        );
        let answers = [at_a.expect("finalize at A"), at_b.expect("finalize at B")];
        let describe = format!("race {race}: A {} / B {}", answers[0], answers[1]);

        let winners: Vec<&AcmeResponse> = answers
            .iter()
            .filter(|answer| {
                answer.status == StatusCode::OK
                    && answer.json().is_ok_and(|body| body["status"] == "valid")
            })
            .collect();
        assert!(!winners.is_empty(), "nobody got 200 valid: {describe}");
        let mut outcome = Vec::new();
        for answer in &answers {
            let short = match (answer.status, answer.problem_type()) {
                (StatusCode::FORBIDDEN, Some(kind)) if kind == "orderNotReady" => {
                    let body = answer.json().expect("a problem is JSON");
                    format!("403 orderNotReady ({})", body["detail"])
                }
                (StatusCode::OK, None) => {
                    let body = answer.json().expect("checked JSON");
                    let status = body["status"].as_str().unwrap_or_default().to_owned();
                    assert!(
                        status == "valid" || status == "processing",
                        "a 200 finalize answer shows a {status} order: {describe}"
                    );
                    format!("200 {status}")
                }
                _ => panic!("neither 200 valid/processing nor 403 orderNotReady: {describe}"),
            };
            outcome.push(format!("{}: {short}", ["A", "B"][answer.replica]));
        }

        // Exactly one certificate for the order, whoever won, and both replicas agree on it.
        let (valid, valid_replica) = client
            .poll(&order_path, |status| status == "valid")
            .await
            .expect("the order becomes valid");
        let certificate_url = valid["certificate"]
            .as_str()
            .expect("a valid order has a certificate");
        let certificate_path = client
            .path_from(certificate_url, valid_replica)
            .expect("the certificate URL is on the replica's base");
        for winner in &winners {
            let body = winner.json().expect("checked JSON");
            let url = body["certificate"]
                .as_str()
                .expect("a valid order has a certificate");
            assert_eq!(
                client
                    .path_from(url, winner.replica)
                    .expect("on the replica's base"),
                certificate_path,
                "{describe}"
            );
        }
        assert_eq!(
            certificates_of(&pair, &order_id).await,
            1,
            "the order has more than one certificate: {describe}"
        );
        let chain = client
            .download(certificate_url, valid_replica)
            .await
            .expect("the certificate downloads");
        verify_pem(chain.as_bytes(), &root, &[&name]).expect("the chain verifies");
        outcome.push(format!("{:?}", started.elapsed()));
        outcomes.push(outcome.join(", "));
    }
    assert_eq!(
        pair.count("certificates")
            .await
            .expect("certificates are countable"),
        u64::try_from(FINALIZE_RACES).expect("small"),
        "one certificate per order"
    );
    for (race, outcome) in outcomes.iter().enumerate() {
        eprintln!("finalize race {race}: {outcome}");
    }
}

/// A replica verifies `kid` requests with account keys it has cached (issue 9), but the
/// account's state comes from the database with every request: a key change or a
/// deactivation done at the other replica holds at once.
#[tokio::test(flavor = "multi_thread")]
async fn key_change_and_deactivation_at_one_replica_hold_at_the_other() {
    let Some(admin_url) = postgres_url() else {
        return;
    };
    let pair = start_pair(&admin_url).await;
    let mut client = pair.acme_client().expect("an HTTPS client");
    client.new_account().await.expect("newAccount");
    let account = client
        .account_path()
        .expect("the account exists")
        .to_owned();
    // Both replicas see (and cache) the first key.
    for replica in [A, B, A, B] {
        let nonce = client.head_nonce_at(replica).await.expect("a nonce");
        let read = client
            .post_at(replica, &account, &nonce, Some(replica), None)
            .await
            .expect("POST-as-GET account");
        assert_eq!(read.status, StatusCode::OK, "{read}");
    }

    // RFC 8555 §7.3.5 at A: the inner JWS is signed by the new key, the outer by the old.
    let key_change = client.resource_path("key-change");
    let url = client.url_at(A, &key_change);
    let new_key = SigningKey::generate_p256();
    let inner = sign_jws(
        &new_key,
        KeyRef::Jwk,
        None,
        &url,
        Some(&json!({
            "account": client.account_url_at(A).unwrap(),
            "oldKey": client.key().jwk(),
        })),
    );
    let nonce = client.head_nonce_at(A).await.expect("a nonce");
    let changed = client
        .post_at(A, &key_change, &nonce, Some(A), Some(&inner))
        .await
        .expect("keyChange");
    assert_eq!(changed.status, StatusCode::OK, "{changed}");
    let old_key = client.replace_key(new_key);

    // The old key is refused at B, which had it cached; the new one is accepted.
    let nonce = client.head_nonce_at(B).await.expect("a nonce");
    let old_signed = sign_jws(
        &old_key,
        KeyRef::Kid(&client.account_url_at(B).unwrap()),
        Some(&nonce),
        &client.url_at(B, &account),
        None,
    );
    let refused = client.send(B, &account, &old_signed).await.expect("POST");
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(
        refused.problem_type().as_deref(),
        Some("malformed"),
        "{refused}"
    );
    for replica in [B, A] {
        let nonce = client.head_nonce_at(replica).await.expect("a nonce");
        let read = client
            .post_at(replica, &account, &nonce, Some(replica), None)
            .await
            .expect("POST-as-GET account");
        assert_eq!(
            read.status,
            StatusCode::OK,
            "the new key at {replica}: {read}"
        );
    }

    // Deactivated at A (RFC 8555 §7.3.6): B refuses the account's next request.
    let nonce = client.head_nonce_at(A).await.expect("a nonce");
    let deactivated = client
        .post_at(
            A,
            &account,
            &nonce,
            Some(A),
            Some(&json!({"status": "deactivated"})),
        )
        .await
        .expect("deactivation");
    assert_eq!(deactivated.status, StatusCode::OK, "{deactivated}");
    let nonce = client.head_nonce_at(B).await.expect("a nonce");
    let refused = client
        .post_at(B, &account, &nonce, Some(B), None)
        .await
        .expect("POST-as-GET account");
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(
        refused.problem_type().as_deref(),
        Some("unauthorized"),
        "{refused}"
    );
}
