//! In-process tests of profiles, claims and requested validity (issue 4): `meta.profiles`,
//! `profile` in newOrder, the profile's identifier rules, notBefore/notAfter within the
//! bounds, and what the issued certificate says (validity to the second, EKU, CN).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use mayfly::config::{Config, HumanDuration};
use mayfly::policy::{IdentifierType, Profiles};
use serde_json::{Value, json};
use support::{Account, NAME, Reply, TestCa, csr, pem_certificates};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

const BACKDATE: Duration = Duration::minutes(1);

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// newOrder for `NAME` with extra members (`profile`, `notBefore`, `notAfter`).
async fn order_reply(ca: &TestCa, account: &Account, extra: Value) -> Reply {
    let mut payload = json!({"identifiers": [{"type": "dns", "value": NAME}]});
    for (key, value) in extra.as_object().unwrap() {
        payload[key] = value.clone();
    }
    ca.account_post(account, "/acme/new-order", Some(&payload))
        .await
}

/// newOrder (asserting 201), every challenge answered, the order ready: (URL, order).
async fn ready_order(ca: &TestCa, account: &Account, extra: Value) -> (String, Value) {
    let reply = order_reply(ca, account, extra).await;
    let order = reply.expect_json(StatusCode::CREATED);
    let order_url = reply.location();
    for authz_url in order["authorizations"].as_array().unwrap() {
        let authz = ca.fetch(account, authz_url.as_str().unwrap()).await;
        if authz["status"] == "valid" {
            continue;
        }
        let challenge = &authz["challenges"][0];
        ca.serve_key_authorization(account, challenge["token"].as_str().unwrap());
        let url = challenge["url"].as_str().unwrap();
        ca.respond(account, url).await;
        let done = ca.poll_challenge(account, url).await;
        assert_eq!(done["status"], "valid", "{done}");
    }
    let order = ca.fetch(account, &order_url).await;
    assert_eq!(order["status"], "ready", "{order}");
    (order_url, order)
}

/// Finalizes a ready order and returns the order and the leaf, DER.
async fn finalize(ca: &TestCa, account: &Account, order: &Value) -> (Value, Vec<u8>) {
    let order = ca
        .finalize(account, order, &csr(&[NAME]))
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(order["status"], "valid", "{order}");
    let chain = ca
        .post_as_get(account, order["certificate"].as_str().unwrap())
        .await;
    assert_eq!(chain.status, StatusCode::OK);
    (order, pem_certificates(&chain.body).remove(0))
}

/// A whole issuance under `extra`; returns the final order and the leaf.
async fn issue(ca: &TestCa, account: &Account, extra: Value) -> (Value, Vec<u8>) {
    let (_, order) = ready_order(ca, account, extra).await;
    finalize(ca, account, &order).await
}

fn validity(leaf_der: &[u8]) -> (OffsetDateTime, OffsetDateTime) {
    let (_, leaf) = X509Certificate::from_der(leaf_der).unwrap();
    (
        leaf.validity().not_before.to_datetime(),
        leaf.validity().not_after.to_datetime(),
    )
}

// ---------------------------------------------------------------------------------------------
// The directory and the choice of profile

#[tokio::test]
async fn directory_lists_the_configured_profiles() {
    let mut config = Config::default();
    let mut web = Profiles::builtin().profiles["hours"].clone();
    web.description = "web servers".into();
    config.profiles = Profiles {
        default: "web".into(),
        builtin: false,
        profiles: BTreeMap::from([("web".to_owned(), web)]),
    };
    let ca = TestCa::with_config(config).await;
    let directory = ca
        .request(Method::GET, "/directory")
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(directory["meta"]["profiles"], json!({"web": "web servers"}));

    let builtin = TestCa::new().await;
    let directory = builtin
        .request(Method::GET, "/directory")
        .await
        .expect_json(StatusCode::OK);
    let names: Vec<&String> = directory["meta"]["profiles"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(names, ["hours", "shortlived", "tlsclient"]);
}

#[tokio::test]
async fn unknown_profile_is_invalid_profile_naming_the_offered_ones() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    order_reply(&ca, &account, json!({"profile": "classic"}))
        .await
        .expect_problem_detail(
            400,
            "invalidProfile",
            "profile \"classic\" is not offered; the profiles are hours, shortlived, tlsclient",
        );
}

#[tokio::test]
async fn an_order_without_profile_gets_the_configured_default_and_echoes_it() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let (url, order) = ca.new_order(&account, &[NAME]).await;
    assert_eq!(order["profile"], "hours");
    assert_eq!(ca.fetch(&account, &url).await["profile"], "hours");
    // Always the default, never a random one.
    for _ in 0..5 {
        assert_eq!(ca.new_order(&account, &[NAME]).await.1["profile"], "hours");
    }

    let mut config = Config::default();
    config.profiles.default = "shortlived".into();
    let ca = TestCa::with_config(config).await;
    let account = ca.new_account().await;
    let (_, order) = ca.new_order(&account, &[NAME]).await;
    assert_eq!(order["profile"], "shortlived");
    // The shortlived profile's orders last 7 hours.
    assert_eq!(
        order["expires"],
        json!(rfc3339(ca.now() + Duration::hours(7)))
    );
}

#[tokio::test]
async fn the_order_echoes_profile_not_before_and_not_after() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let not_before = ca.now() + Duration::minutes(30);
    let not_after = not_before + Duration::hours(12);
    let reply = order_reply(
        &ca,
        &account,
        json!({
            "profile": "tlsclient",
            "notBefore": rfc3339(not_before),
            "notAfter": rfc3339(not_after),
        }),
    )
    .await;
    let order = reply.expect_json(StatusCode::CREATED);
    for order in [order, ca.fetch(&account, &reply.location()).await] {
        assert_eq!(order["profile"], "tlsclient");
        assert_eq!(order["notBefore"], json!(rfc3339(not_before)));
        assert_eq!(order["notAfter"], json!(rfc3339(not_after)));
    }
    // Without a request, the order says nothing about the validity.
    let (_, plain) = ca.new_order(&account, &[NAME]).await;
    assert!(plain.get("notBefore").is_none() && plain.get("notAfter").is_none());
}

#[tokio::test]
async fn an_identifier_type_the_profile_does_not_allow_is_rejected() {
    let mut config = Config::default();
    let mut dns_only = Profiles::builtin().profiles["hours"].clone();
    dns_only.identifier_types = vec![IdentifierType::Dns];
    config.profiles.profiles.insert("dnsonly".into(), dns_only);
    let ca = TestCa::with_config(config).await;
    let account = ca.new_account().await;
    let payload = json!({
        "profile": "dnsonly",
        "identifiers": [{"type": "ip", "value": "192.0.2.1"}],
    });
    let problem = ca
        .account_post(&account, "/acme/new-order", Some(&payload))
        .await
        .expect_problem_detail(
            400,
            "rejectedIdentifier",
            "the profile dnsonly does not allow ip identifiers (it allows dns)",
        );
    assert_eq!(
        problem["identifier"],
        json!({"type": "ip", "value": "192.0.2.1"})
    );
    // The same identifier under a profile that allows IP addresses is fine.
    let payload = json!({"identifiers": [{"type": "ip", "value": "192.0.2.1"}]});
    ca.account_post(&account, "/acme/new-order", Some(&payload))
        .await
        .expect_json(StatusCode::CREATED);
}

#[tokio::test]
async fn the_profile_sets_the_most_names() {
    let mut config = Config::default();
    config
        .profiles
        .profiles
        .get_mut("tlsclient")
        .unwrap()
        .max_names = 1;
    let ca = TestCa::with_config(config).await;
    let account = ca.new_account().await;
    let payload = json!({
        "profile": "tlsclient",
        "identifiers": [{"type": "dns", "value": NAME}, {"type": "dns", "value": "b.example.com"}],
    });
    ca.account_post(&account, "/acme/new-order", Some(&payload))
        .await
        .expect_problem_detail(
            400,
            "rejectedIdentifier",
            "the order has 2 identifiers; the profile tlsclient allows at most 1",
        );
    // The default profile still allows both.
    ca.new_order(&account, &[NAME, "b.example.com"]).await;
}

// ---------------------------------------------------------------------------------------------
// Validity: exactly what policy says, to the second

#[tokio::test]
async fn each_builtin_profile_issues_its_own_validity() {
    let cases = [("hours", 24), ("shortlived", 160), ("tlsclient", 24)];
    for (profile, hours) in cases {
        let ca = TestCa::new().await;
        let account = ca.new_account().await;
        let (_, order) = ready_order(&ca, &account, json!({"profile": profile})).await;
        let issued_at = ca.now();
        let (order, leaf) = finalize(&ca, &account, &order).await;
        assert_eq!(order["profile"], profile);
        let (not_before, not_after) = validity(&leaf);
        assert_eq!(not_before, issued_at - BACKDATE, "{profile}");
        assert_eq!(not_after, issued_at + Duration::hours(hours), "{profile}");
        assert_eq!(
            not_after - not_before,
            Duration::hours(hours) + BACKDATE,
            "{profile}"
        );
    }
}

#[tokio::test]
async fn requested_not_after_inside_at_and_beyond_the_maximum() {
    // (profile, requested lifetime, the error detail if refused)
    let cases: [(&str, Duration, Option<&str>); 8] = [
        ("hours", Duration::hours(12), None),
        ("hours", Duration::hours(24), None),
        (
            "hours",
            Duration::hours(24) + Duration::seconds(1),
            Some(
                "notAfter is 24h1s after the time of issuance; the profile hours allows at most 24h",
            ),
        ),
        ("shortlived", Duration::hours(100), None),
        ("shortlived", Duration::hours(160), None),
        (
            "shortlived",
            Duration::hours(161),
            Some(
                "notAfter is 161h after the time of issuance; the profile shortlived allows at most 160h",
            ),
        ),
        ("tlsclient", Duration::minutes(5), None),
        (
            "tlsclient",
            Duration::minutes(4),
            Some(
                "notAfter is 4m after the time of issuance; the profile tlsclient requires at least 5m",
            ),
        ),
    ];
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    for (profile, lifetime, refusal) in cases {
        let not_after = ca.now() + lifetime;
        let extra = json!({"profile": profile, "notAfter": rfc3339(not_after)});
        let case = format!("{profile} {lifetime}");
        match refusal {
            Some(detail) => {
                order_reply(&ca, &account, extra)
                    .await
                    .expect_problem_detail(400, "malformed", detail);
            }
            None => {
                let issued_at = ca.now();
                let (_, leaf) = issue(&ca, &account, extra).await;
                assert_eq!(validity(&leaf), (issued_at - BACKDATE, not_after), "{case}");
            }
        }
    }
}

#[tokio::test]
async fn a_requested_not_before_fixes_the_start() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let not_before = ca.now() + Duration::hours(1);
    let extra = json!({"notBefore": rfc3339(not_before)});
    let (_, order) = ready_order(&ca, &account, extra).await;
    // Finalized later: the certificate still starts at the requested time.
    ca.clock.advance(Duration::minutes(20));
    let (_, leaf) = finalize(&ca, &account, &order).await;
    assert_eq!(
        validity(&leaf),
        (not_before, not_before + Duration::hours(24))
    );

    // Both bounds requested: exactly those.
    let not_before = ca.now() - Duration::seconds(30);
    let not_after = not_before + Duration::hours(2);
    let extra = json!({"notBefore": rfc3339(not_before), "notAfter": rfc3339(not_after)});
    let (_, leaf) = issue(&ca, &account, extra).await;
    assert_eq!(validity(&leaf), (not_before, not_after));
}

#[tokio::test]
async fn requested_times_outside_the_bounds_are_malformed() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let now = ca.now();
    let cases = [
        (
            "notBefore further in the past than the backdate",
            json!({"notBefore": rfc3339(now - Duration::minutes(2))}),
            "notBefore is 2m in the past; the profile hours allows at most 1m (the backdate)",
        ),
        (
            "notBefore beyond the order lifetime",
            json!({"profile": "shortlived", "notBefore": rfc3339(now + Duration::hours(8))}),
            "notBefore is 8h in the future; the profile shortlived allows at most 7h (the order lifetime)",
        ),
        (
            "notAfter before notBefore",
            json!({
                "notBefore": rfc3339(now + Duration::hours(1)),
                "notAfter": rfc3339(now + Duration::minutes(30)),
            }),
            "notAfter is not after notBefore",
        ),
        (
            "lifetime from notBefore beyond the maximum",
            json!({
                "notBefore": rfc3339(now + Duration::hours(1)),
                "notAfter": rfc3339(now + Duration::hours(26)),
            }),
            "notAfter is 25h after notBefore; the profile hours allows at most 24h",
        ),
        (
            "an unparseable notAfter",
            json!({"notAfter": "tomorrow"}),
            "notAfter \"tomorrow\" is not an RFC 3339 date-time",
        ),
        (
            "an unparseable notBefore",
            json!({"notBefore": "2030-01-01"}),
            "notBefore \"2030-01-01\" is not an RFC 3339 date-time",
        ),
    ];
    for (case, extra, detail) in cases {
        let problem = order_reply(&ca, &account, extra)
            .await
            .expect_problem(400, "malformed");
        assert_eq!(problem["detail"], json!(detail), "{case}");
    }
    // Within the backdate is fine.
    order_reply(
        &ca,
        &account,
        json!({"notBefore": rfc3339(now - Duration::seconds(60))}),
    )
    .await
    .expect_json(StatusCode::CREATED);
}

#[tokio::test]
async fn claims_bound_every_profile() {
    let mut config = Config::default();
    config.acme.claims.backdate = HumanDuration::seconds(10);
    let ca = TestCa::with_config(config).await;
    let account = ca.new_account().await;
    let issued_at = ca.now();
    let (_, leaf) = issue(&ca, &account, json!({})).await;
    assert_eq!(
        validity(&leaf),
        (
            issued_at - Duration::seconds(10),
            issued_at + Duration::hours(24)
        )
    );
}

// ---------------------------------------------------------------------------------------------
// What the leaf carries

#[tokio::test]
async fn the_profile_decides_eku_and_common_name() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    // (profile, serverAuth, clientAuth, subject)
    let cases = [
        ("hours", true, false, format!("CN={NAME}")),
        ("tlsclient", false, true, format!("CN={NAME}")),
        ("shortlived", true, false, String::new()),
    ];
    for (profile, server, client, subject) in cases {
        let (_, leaf_der) = issue(&ca, &account, json!({"profile": profile})).await;
        let (_, leaf) = X509Certificate::from_der(&leaf_der).unwrap();
        let eku = leaf.extended_key_usage().unwrap().unwrap().value;
        assert_eq!(
            (eku.server_auth, eku.client_auth),
            (server, client),
            "{profile}"
        );
        assert!(eku.other.is_empty(), "{profile}");
        assert_eq!(leaf.subject().to_string(), subject, "{profile}");
        assert_eq!(
            leaf.key_usage().unwrap().unwrap().value.to_string(),
            "Digital Signature",
            "{profile}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Authorization reuse across profiles

#[tokio::test]
async fn authorizations_are_not_reused_beyond_the_profile_authorization_lifetime() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let created = ca.now();
    ready_order(&ca, &account, json!({"profile": "hours"})).await;

    // Six hours on: the 8-hour authorization is younger than shortlived's 7 hours, so it is
    // reused, and the order expires when a 7-hour authorization would.
    ca.clock.advance(Duration::hours(6));
    let reply = order_reply(&ca, &account, json!({"profile": "shortlived"})).await;
    let order = reply.expect_json(StatusCode::CREATED);
    assert_eq!(order["status"], "ready", "{order}");
    assert_eq!(
        order["expires"],
        json!(rfc3339(created + Duration::hours(7)))
    );

    // Seven hours on: too old for shortlived, still fine for hours.
    ca.clock.advance(Duration::hours(1));
    let order = order_reply(&ca, &account, json!({"profile": "shortlived"}))
        .await
        .expect_json(StatusCode::CREATED);
    assert_eq!(order["status"], "pending", "{order}");
    let order = order_reply(&ca, &account, json!({"profile": "hours"}))
        .await
        .expect_json(StatusCode::CREATED);
    assert_eq!(order["status"], "ready", "{order}");
    assert_eq!(
        order["expires"],
        json!(rfc3339(created + Duration::hours(8)))
    );
}
