//! The audit log (issue 7) in process: issuance, revocation and account changes are recorded
//! with their actor, object and request id; authentication and authorization failures are
//! recorded, bad nonces are not; the authority's read pages through it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mayfly::issuer::serial_hex;
use mayfly::jose::{KeyRef, SigningKey, sign_jws};
use mayfly::storage::{AuditEvent, AuditFilter};
use serde_json::json;
use support::{Account, NAME, TestCa, csr, url};
use x509_parser::prelude::{FromDer, X509Certificate};

/// Every audit event so far, oldest first, once the writer has caught up.
async fn audit_log(ca: &TestCa) -> Vec<AuditEvent> {
    let authority = &ca.state.0.authority;
    authority.flush_audit().await;
    let page = authority
        .audit_events(&AuditFilter::default(), None, 1000)
        .await
        .unwrap();
    page.events.into_iter().rev().map(|r| r.event).collect()
}

fn account_id(account: &Account) -> String {
    account.url.rsplit('/').next().unwrap().to_owned()
}

/// The events of one kind, as (actor, object, outcome).
fn of_kind(events: &[AuditEvent], kind: &str) -> Vec<(String, String, String)> {
    events
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| (e.actor.clone(), e.object.clone(), e.outcome.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuance_revocation_and_account_changes_are_recorded() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let id = account_id(&account);
    let actor = format!("account:{id}");
    let (_, order) = ca.ready_order(&account, &[NAME]).await;
    let order = ca
        .finalize(&account, &order, &csr(&[NAME]))
        .await
        .expect_json(StatusCode::OK);
    let chain = ca
        .post_as_get(&account, order["certificate"].as_str().unwrap())
        .await;
    let der = support::pem_certificates(&chain.body).remove(0);
    let serial = serial_hex(X509Certificate::from_der(&der).unwrap().1.raw_serial());
    let revoke = json!({"certificate": URL_SAFE_NO_PAD.encode(&der), "reason": 4});
    let revoked = ca
        .account_post(&account, "/acme/revoke-cert", Some(&revoke))
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    ca.account_post(
        &account,
        &account.url,
        Some(&json!({"contact": ["mailto:new@example.com"]})),
    )
    .await
    .expect_json(StatusCode::OK);
    ca.account_post(
        &account,
        &account.url,
        Some(&json!({"status": "deactivated"})),
    )
    .await
    .expect_json(StatusCode::OK);

    let events = audit_log(&ca).await;
    let success = || "success".to_owned();
    let account_object = format!("account:{id}");
    // In-process requests have no peer address: the creator is unknown.
    assert_eq!(
        of_kind(&events, "account.created"),
        vec![("unknown".to_owned(), account_object.clone(), success())]
    );
    assert_eq!(
        of_kind(&events, "certificate.issued"),
        vec![(actor.clone(), format!("serial:{serial}"), success())]
    );
    let issued = events
        .iter()
        .find(|e| e.kind == "certificate.issued")
        .unwrap();
    assert_eq!(issued.detail["names"], json!([format!("dns:{NAME}")]));
    assert_eq!(issued.detail["profile"], "hours", "the default profile");
    assert!(issued.detail["not_after"].is_i64(), "{}", issued.detail);
    assert!(issued.request_id.is_some(), "the finalize request's id");
    assert_eq!(
        of_kind(&events, "certificate.revoked"),
        vec![(actor.clone(), format!("serial:{serial}"), success())]
    );
    let revoked = events
        .iter()
        .find(|e| e.kind == "certificate.revoked")
        .unwrap();
    assert_eq!(revoked.detail, json!({"reason": 4, "account": id}));
    assert_eq!(
        of_kind(&events, "account.contact_updated"),
        vec![(actor.clone(), account_object.clone(), success())]
    );
    assert_eq!(
        of_kind(&events, "account.deactivated"),
        vec![(actor.clone(), account_object, success())]
    );
    // The deactivated account's next request is an authorization failure.
    let refused = ca.new_order_reply(&account, &[NAME]).await;
    refused.expect_problem(403, "unauthorized");
    let events = audit_log(&ca).await;
    let last = events.last().unwrap();
    assert_eq!(
        (
            last.kind.as_str(),
            last.actor.as_str(),
            last.object.as_str()
        ),
        ("auth.refused", "unknown", "path:/acme/new-order")
    );
    assert_eq!(last.detail["reason"], "unauthorized");
    // Not verified, so not the actor; but the refusal names whom it claimed to come from.
    assert_eq!(last.detail["claimed_account"], json!(id));
    assert_eq!(last.outcome, "failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_failures_are_recorded_and_bad_nonces_are_not() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let before = audit_log(&ca).await.len();

    // A JWS for the account's kid, signed by another key.
    let stranger = SigningKey::generate_p256();
    let forged = ca
        .post(
            &stranger,
            KeyRef::Kid(&account.url),
            "/acme/new-order",
            Some(&json!({"identifiers": [{"type": "dns", "value": NAME}]})),
        )
        .await;
    forged.expect_problem(400, "malformed");
    // A kid that names no account.
    let unknown = format!("{}x", account.url);
    ca.post(
        &stranger,
        KeyRef::Kid(&unknown),
        "/acme/new-order",
        Some(&json!({"identifiers": [{"type": "dns", "value": NAME}]})),
    )
    .await
    .expect_problem(400, "accountDoesNotExist");
    // A nonce used twice: badNonce, not an authentication failure.
    let nonce = ca.nonce().await;
    let path = "/acme/new-order";
    let payload = json!({"identifiers": [{"type": "dns", "value": NAME}]});
    let jws = sign_jws(
        &account.key,
        KeyRef::Kid(&account.url),
        Some(&nonce),
        &url(path),
        Some(&payload),
    );
    ca.post_jws(path, &jws)
        .await
        .expect_json(StatusCode::CREATED);
    ca.post_jws(path, &jws)
        .await
        .expect_problem(400, "badNonce");

    let events = audit_log(&ca).await;
    let reasons: Vec<(String, String)> = events[before..]
        .iter()
        .filter(|e| e.kind == "auth.refused")
        .map(|e| {
            (
                e.detail["reason"].as_str().unwrap().to_owned(),
                e.object.clone(),
            )
        })
        .collect();
    let new_order = "path:/acme/new-order".to_owned();
    assert_eq!(
        reasons,
        vec![
            ("badSignature".to_owned(), new_order.clone()),
            ("accountDoesNotExist".to_owned(), new_order),
        ]
    );
    assert!(
        events[before..].iter().all(|e| e.kind == "auth.refused"),
        "nothing else was recorded: {events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_pages_and_filters() {
    let ca = TestCa::new().await;
    let accounts = [
        ca.new_account().await,
        ca.new_account().await,
        ca.new_account().await,
    ];
    let authority = &ca.state.0.authority;
    authority.flush_audit().await;
    let created = AuditFilter {
        kind: Some("account.created".into()),
        ..AuditFilter::default()
    };
    let first = authority.audit_events(&created, None, 2).await.unwrap();
    assert_eq!(first.events.len(), 2);
    let second = authority
        .audit_events(&created, first.next, 2)
        .await
        .unwrap();
    assert_eq!(second.events.len(), 1);
    assert_eq!(second.next, None);
    // Newest first: the last account created comes first.
    let objects: Vec<String> = [first.events, second.events]
        .concat()
        .into_iter()
        .map(|r| r.event.object)
        .collect();
    let want: Vec<String> = accounts
        .iter()
        .rev()
        .map(|a| format!("account:{}", account_id(a)))
        .collect();
    assert_eq!(objects, want);

    let one = AuditFilter {
        object: Some(want[1].clone()),
        ..AuditFilter::default()
    };
    let page = authority.audit_events(&one, None, 10).await.unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].event.kind, "account.created");
}
