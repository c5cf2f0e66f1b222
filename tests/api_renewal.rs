//! ACME Renewal Information (RFC 9773) in process: renewalInfo for an issued certificate
//! (window exact to the second under the FakeClock, Retry-After), its problems, revoked and
//! administrator-moved windows, and `replaces` in newOrder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mayfly::authority::renewal::{MoveError, move_window};
use mayfly::policy::renewal::CertId;
use serde_json::{Value, json};
use support::{Account, NAME, Reply, TestCa, csr};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

const RENEWAL_INFO: &str = "/acme/renewal-info";

/// A certificate `account` obtained for `names`.
struct Issued {
    der: Vec<u8>,
    id: CertId,
}

impl Issued {
    fn not_before(&self) -> OffsetDateTime {
        let (_, cert) = X509Certificate::from_der(&self.der).unwrap();
        cert.validity().not_before.to_datetime()
    }
    fn not_after(&self) -> OffsetDateTime {
        let (_, cert) = X509Certificate::from_der(&self.der).unwrap();
        cert.validity().not_after.to_datetime()
    }
    fn path(&self) -> String {
        format!("{RENEWAL_INFO}/{}", self.id)
    }
}

async fn issue(ca: &TestCa, account: &Account, names: &[&str]) -> Issued {
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
    let id = CertId::from_certificate_der(&der).unwrap();
    Issued { der, id }
}

fn time_of(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(value.as_str().unwrap(), &Rfc3339).unwrap()
}

/// The suggested window of a 200 renewalInfo reply.
fn window(reply: &Reply) -> (OffsetDateTime, OffsetDateTime) {
    let body = reply.expect_json(StatusCode::OK);
    let window = &body["suggestedWindow"];
    (time_of(&window["start"]), time_of(&window["end"]))
}

fn retry_after(reply: &Reply) -> Duration {
    let seconds: i64 = reply
        .header("retry-after")
        .expect("a Retry-After")
        .parse()
        .unwrap();
    Duration::seconds(seconds)
}

async fn new_order_replacing(ca: &TestCa, account: &Account, names: &[&str], id: &str) -> Reply {
    let identifiers: Vec<Value> = names
        .iter()
        .map(|n| json!({"type": "dns", "value": n}))
        .collect();
    ca.account_post(
        account,
        "/acme/new-order",
        Some(&json!({"identifiers": identifiers, "replaces": id})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_advertises_renewal_info() {
    let ca = TestCa::new().await;
    let directory = ca
        .request(Method::GET, "/directory")
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(directory["renewalInfo"], support::url(RENEWAL_INFO));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_of_an_issued_certificate_is_exact() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let issued_at = ca.now();
    let issued = issue(&ca, &account, &[NAME]).await;
    // The default certificate: about a day, backdated by one minute; a short certificate
    // (under ten days), so the window is centred at half the lifetime, ±1 % of it, in whole
    // seconds.
    assert_eq!(issued.not_before(), issued_at - Duration::minutes(1));
    let lifetime = (issued.not_after() - issued.not_before()).whole_seconds();
    assert!(
        (86_400..=86_460).contains(&lifetime),
        "a default certificate lives {lifetime} s"
    );
    let centre = issued.not_before() + Duration::seconds(lifetime / 2);
    let margin = Duration::seconds(lifetime / 100);
    let reply = ca.request(Method::GET, &issued.path()).await;
    assert_eq!(window(&reply), (centre - margin, centre + margin));
    // 6 h by default, jittered down by at most 10 %, and never over a quarter of 24 h.
    let retry = retry_after(&reply);
    assert!(retry <= Duration::hours(6), "{retry}");
    assert!(
        retry >= Duration::hours(6) - Duration::minutes(36),
        "{retry}"
    );
    // The window does not depend on when it is asked for.
    ca.clock.advance(Duration::hours(3));
    let later = ca.request(Method::GET, &issued.path()).await;
    assert_eq!(window(&later), window(&reply));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_capped_at_a_quarter_of_the_lifetime() {
    let mut config = mayfly::config::Config::default();
    config.renewal.retry_after = mayfly::config::HumanDuration::hours(10);
    let ca = TestCa::with_config(config).await;
    let account = ca.new_account().await;
    let issued = issue(&ca, &account, &[NAME]).await;
    let reply = ca.request(Method::GET, &issued.path()).await;
    let quarter = (issued.not_after() - issued.not_before()) / 4;
    let retry = retry_after(&reply);
    assert!(retry <= quarter, "{retry} > {quarter}");
    assert!(retry >= quarter * 9 / 10, "{retry}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_as_get_answers_the_same_window() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let issued = issue(&ca, &account, &[NAME]).await;
    let get = ca.request(Method::GET, &issued.path()).await;
    let post = ca.post_as_get(&account, &issued.path()).await;
    assert_eq!(window(&post), window(&get));
    assert!(post.header("retry-after").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_ids_are_malformed() {
    let ca = TestCa::new().await;
    for (case, id, detail) in [
        ("no dot", "abcdef", "has no \".\""),
        ("empty serial", "abcd.", "has an empty serial number"),
        (
            "padding",
            "abc=.AQ",
            "the key identifier is not unpadded base64url",
        ),
        (
            "standard alphabet",
            "ab+c.AQ",
            "the key identifier is not unpadded base64url",
        ),
    ] {
        let reply = ca
            .request(Method::GET, &format!("{RENEWAL_INFO}/{id}"))
            .await;
        let problem = reply.expect_problem(400, "malformed");
        assert!(
            problem["detail"].as_str().unwrap().contains(detail),
            "{case}: {problem}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_certificates_are_404() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let issued = issue(&ca, &account, &[NAME]).await;
    let unknown_serial = CertId {
        key_identifier: issued.id.key_identifier.clone(),
        serial: vec![0x4a, 0x0b, 0x0c],
    };
    let other_ca = CertId {
        key_identifier: vec![1, 2, 3, 4],
        serial: issued.id.serial.clone(),
    };
    for (case, id) in [("unknown serial", unknown_serial), ("another CA", other_ca)] {
        let reply = ca
            .request(Method::GET, &format!("{RENEWAL_INFO}/{id}"))
            .await;
        let problem = reply.expect_problem(404, "malformed");
        assert_eq!(
            problem["detail"],
            format!("no certificate issued by this CA has the id {id}"),
            "{case}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_certificate_gets_an_open_window() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let issued = issue(&ca, &account, &[NAME]).await;
    let revoked = ca
        .account_post(
            &account,
            "/acme/revoke-cert",
            Some(&json!({"certificate": URL_SAFE_NO_PAD.encode(&issued.der)})),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    let now = ca.now();
    let reply = ca.request(Method::GET, &issued.path()).await;
    assert_eq!(
        window(&reply),
        (now - Duration::seconds(1), now + Duration::minutes(5))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_moved_by_the_administrator_wins() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let issued = issue(&ca, &account, &[NAME]).await;
    let computed = window(&ca.request(Method::GET, &issued.path()).await);
    // What `mayfly admin ari move` does: a second connection to the database.
    let store = mayfly::storage::connect(&ca.database_url(), 1)
        .await
        .unwrap();
    let now = ca.now();
    let moved = (now, now + Duration::minutes(5));
    let key_id = issued.id.key_identifier.clone();
    let certificate = move_window(&*store, &issued.id.to_string(), Some(moved), Some(&key_id))
        .await
        .unwrap();
    assert_eq!(
        certificate.serial,
        mayfly::issuer::serial_hex(&issued.id.serial)
    );
    assert_eq!(
        window(&ca.request(Method::GET, &issued.path()).await),
        moved
    );
    // By serial, with colons, as an operator copies it from openssl.
    let serial = issued
        .id
        .serial
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let later = (now + Duration::hours(1), now + Duration::hours(2));
    move_window(&*store, &serial, Some(later), None)
        .await
        .unwrap();
    assert_eq!(
        window(&ca.request(Method::GET, &issued.path()).await),
        later
    );
    // Reset: computed again.
    move_window(&*store, &serial, None, None).await.unwrap();
    assert_eq!(
        window(&ca.request(Method::GET, &issued.path()).await),
        computed
    );
    // The errors the CLI turns into exit codes.
    let backwards = move_window(&*store, &serial, Some((later.1, later.0)), None).await;
    assert!(
        matches!(backwards, Err(MoveError::Usage(_))),
        "{backwards:?}"
    );
    let unknown = move_window(&*store, "4a0b0c", Some(later), None).await;
    assert!(matches!(unknown, Err(MoveError::Unknown(_))), "{unknown:?}");
    let other_ca = CertId {
        key_identifier: vec![9, 9],
        serial: issued.id.serial.clone(),
    };
    let refused = move_window(&*store, &other_ca.to_string(), Some(later), Some(&key_id)).await;
    assert!(matches!(refused, Err(MoveError::Unknown(_))), "{refused:?}");
    let garbage = move_window(&*store, "not-hex", Some(later), None).await;
    assert!(matches!(garbage, Err(MoveError::Usage(_))), "{garbage:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaces_once_then_already_replaced() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let issued = issue(&ca, &account, &[NAME, "b.example.com"]).await;
    let id = issued.id.to_string();
    // Shares one of the two names: enough.
    let first = new_order_replacing(&ca, &account, &[NAME, "c.example.com"], &id).await;
    let order = first.expect_json(StatusCode::CREATED);
    assert_eq!(order["replaces"], id.as_str());
    let fetched = ca.fetch(&account, &first.location()).await;
    assert_eq!(fetched["replaces"], id.as_str());
    let second = new_order_replacing(&ca, &account, &[NAME], &id).await;
    second.expect_problem_detail(
        409,
        "alreadyReplaced",
        &format!(
            "the certificate {id} (serial {}) is already replaced by another order; a \
             certificate can be replaced only once",
            mayfly::issuer::serial_hex(&issued.id.serial)
        ),
    );
    // An order without `replaces` is unaffected.
    ca.new_order(&account, &[NAME]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_order_that_expired_unfinished_releases_the_certificate() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let issued = issue(&ca, &account, &[NAME]).await;
    let id = issued.id.to_string();
    let first = new_order_replacing(&ca, &account, &["b.example.com", NAME], &id).await;
    let order = first.expect_json(StatusCode::CREATED);
    let expires = time_of(&order["expires"]);
    ca.clock.set(expires + Duration::seconds(1));
    let again = new_order_replacing(&ca, &account, &["b.example.com"], &id).await;
    // b.example.com is not a name of the certificate: refused for that, not as replaced.
    again.expect_problem(400, "malformed");
    let again = new_order_replacing(&ca, &account, &[NAME], &id).await;
    assert_eq!(
        again.expect_json(StatusCode::CREATED)["replaces"],
        id.as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaces_must_name_a_certificate_of_the_account_sharing_an_identifier() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let other = ca.new_account().await;
    let issued = issue(&ca, &account, &[NAME]).await;
    let id = issued.id.to_string();

    let reply = new_order_replacing(&ca, &other, &[NAME], &id).await;
    reply.expect_problem_detail(
        400,
        "malformed",
        &format!(
            "replaces: the certificate {id} was issued to another account; an order can only \
             replace a certificate of its own account"
        ),
    );

    let reply = new_order_replacing(&ca, &account, &["b.example.com"], &id).await;
    reply.expect_problem_detail(
        400,
        "malformed",
        &format!(
            "replaces: the certificate {id} is for {NAME} and shares no identifier with this \
             order (b.example.com)"
        ),
    );

    let reply = new_order_replacing(&ca, &account, &[NAME], "not-an-id").await;
    reply.expect_problem_detail(
        400,
        "malformed",
        "replaces: certificate identifier \"not-an-id\" has no \".\" between its two parts \
         (RFC 9773 §4.1)",
    );

    let unknown = CertId {
        key_identifier: issued.id.key_identifier.clone(),
        serial: vec![0x4a, 0x0b],
    };
    let reply = new_order_replacing(&ca, &account, &[NAME], &unknown.to_string()).await;
    reply.expect_problem_detail(
        400,
        "malformed",
        &format!("replaces: no certificate issued by this CA has the id {unknown}"),
    );

    // None of the refusals marked the certificate: the account can still replace it.
    let reply = new_order_replacing(&ca, &account, &[NAME], &id).await;
    assert_eq!(
        reply.expect_json(StatusCode::CREATED)["replaces"],
        id.as_str()
    );
}
