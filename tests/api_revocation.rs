//! revokeCert (RFC 8555 §7.6) and the CRL, in process: who may revoke, the exact problems,
//! and what the CRL served on the plain-HTTP listener says afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::BodyExt;
use mayfly::issuer::serial_hex;
use mayfly::jose::{KeyRef, SigningKey};
use serde_json::{Value, json};
use support::{Account, NAME, Reply, TestCa, csr_with, pem_certificates};
use time::{Duration, OffsetDateTime};
use tower::ServiceExt;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

const REVOKE: &str = "/acme/revoke-cert";

/// A certificate `account` obtained for `names`, and its key.
struct Issued {
    der: Vec<u8>,
    key: rcgen::KeyPair,
    serial: String,
}

impl Issued {
    fn payload(&self, reason: Option<i64>) -> Value {
        let mut payload = json!({"certificate": URL_SAFE_NO_PAD.encode(&self.der)});
        if let Some(reason) = reason {
            payload["reason"] = json!(reason);
        }
        payload
    }

    fn signing_key(&self) -> SigningKey {
        SigningKey::from_pkcs8(&self.key.serialize_der()).unwrap()
    }
}

async fn issue(ca: &TestCa, account: &Account, names: &[&str]) -> Issued {
    let (_, order) = ca.ready_order(account, names).await;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let order = ca
        .finalize(account, &order, &csr_with(&key, names))
        .await
        .expect_json(StatusCode::OK);
    let chain = ca
        .post_as_get(account, order["certificate"].as_str().unwrap())
        .await;
    assert_eq!(chain.status, StatusCode::OK);
    let der = pem_certificates(&chain.body).remove(0);
    let serial = serial_hex(X509Certificate::from_der(&der).unwrap().1.raw_serial());
    Issued { der, key, serial }
}

async fn revoke(ca: &TestCa, account: &Account, issued: &Issued, reason: Option<i64>) -> Reply {
    ca.account_post(account, REVOKE, Some(&issued.payload(reason)))
        .await
}

/// Asserts the empty 200 of a successful revocation.
fn assert_revoked(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert!(reply.body.is_empty());
}

/// What a CRL says, after checking its signature with the intermediate.
#[derive(Debug)]
struct CrlView {
    number: String,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    /// (serial, reason code; None for unspecified)
    entries: Vec<(String, Option<u8>)>,
}

async fn fetch_crl(ca: &TestCa) -> CrlView {
    let path = format!("/crl/{}.crl", ca.issuer.crl_name());
    let response = ca
        .crl_router
        .clone()
        .oneshot(Request::get(&path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/pkix-crl"
    );
    let der = response.into_body().collect().await.unwrap().to_bytes();
    let (_, crl) = CertificateRevocationList::from_der(&der).unwrap();
    let (_, intermediate) = X509Certificate::from_der(ca.issuer.intermediate_der()).unwrap();
    crl.verify_signature(intermediate.public_key()).unwrap();
    assert_eq!(crl.issuer(), intermediate.subject());
    CrlView {
        number: crl.crl_number().unwrap().to_string(),
        this_update: crl.last_update().to_datetime(),
        next_update: crl.next_update().unwrap().to_datetime(),
        entries: crl
            .iter_revoked_certificates()
            .map(|e| (serial_hex(e.raw_serial()), e.reason_code().map(|r| r.1.0)))
            .collect(),
    }
}

#[tokio::test]
async fn the_issuing_account_revokes_and_the_crl_lists_it() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let issued = issue(&ca, &account, &[NAME]).await;
    let before = fetch_crl(&ca).await;
    assert!(before.entries.is_empty());

    assert_revoked(&revoke(&ca, &account, &issued, Some(1)).await);

    let crl = fetch_crl(&ca).await;
    assert_eq!(crl.entries, vec![(issued.serial.clone(), Some(1))]);
    assert!(crl.number.parse::<u64>().unwrap() > before.number.parse::<u64>().unwrap());
    assert_eq!(crl.this_update, ca.now());
    assert_eq!(crl.next_update, crl.this_update + Duration::hours(24));

    // Twice: alreadyRevoked, and the first reason stays.
    revoke(&ca, &account, &issued, Some(4))
        .await
        .expect_problem_detail(
            400,
            "alreadyRevoked",
            &format!("certificate {} is already revoked", issued.serial),
        );
    assert_eq!(
        fetch_crl(&ca).await.entries,
        vec![(issued.serial.clone(), Some(1))]
    );
}

#[tokio::test]
async fn no_reason_means_unspecified_and_no_reason_code() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let issued = issue(&ca, &account, &[NAME]).await;
    assert_revoked(&revoke(&ca, &account, &issued, None).await);
    assert_eq!(fetch_crl(&ca).await.entries, vec![(issued.serial, None)]);
}

#[tokio::test]
async fn the_certificate_key_revokes_with_a_jwk() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let issued = issue(&ca, &account, &[NAME]).await;

    // Another key in the jwk: unauthorized.
    let stranger = SigningKey::generate_p256();
    ca.post(
        &stranger,
        KeyRef::Jwk,
        REVOKE,
        Some(&issued.payload(Some(1))),
    )
    .await
    .expect_problem_detail(
        403,
        "unauthorized",
        "the request is signed with a jwk that is not the certificate's key",
    );

    let reply = ca
        .post(
            &issued.signing_key(),
            KeyRef::Jwk,
            REVOKE,
            Some(&issued.payload(Some(1))),
        )
        .await;
    assert_revoked(&reply);
    assert_eq!(
        fetch_crl(&ca).await.entries,
        vec![(issued.serial.clone(), Some(1))]
    );
}

#[tokio::test]
async fn an_unrelated_account_is_unauthorized() {
    let ca = TestCa::new().await;
    let owner = ca.new_account().await;
    let issued = issue(&ca, &owner, &[NAME]).await;
    let stranger = ca.new_account().await;
    let stranger_id = stranger.url.rsplit('/').next().unwrap().to_owned();
    revoke(&ca, &stranger, &issued, Some(1))
        .await
        .expect_problem_detail(
            403,
            "unauthorized",
            &format!(
                "account {stranger_id} did not request this certificate and holds no valid \
                 authorization for dns:{NAME}"
            ),
        );
    assert!(fetch_crl(&ca).await.entries.is_empty());
}

#[tokio::test]
async fn an_account_authorized_for_every_name_may_revoke() {
    let ca = TestCa::new().await;
    let owner = ca.new_account().await;
    let names = [NAME, "b.example.com"];
    let issued = issue(&ca, &owner, &names).await;

    // Authorized for one name of two: not enough.
    let other = ca.new_account().await;
    ca.ready_order(&other, &[NAME]).await;
    revoke(&ca, &other, &issued, Some(4))
        .await
        .expect_problem(403, "unauthorized");

    // For both (a second order): allowed.
    ca.ready_order(&other, &["b.example.com"]).await;
    assert_revoked(&revoke(&ca, &other, &issued, Some(4)).await);
    assert_eq!(fetch_crl(&ca).await.entries, vec![(issued.serial, Some(4))]);
}

#[tokio::test]
async fn expired_authorizations_do_not_authorize() {
    let ca = TestCa::new().await;
    let owner = ca.new_account().await;
    let issued = issue(&ca, &owner, &[NAME]).await;
    let other = ca.new_account().await;
    ca.ready_order(&other, &[NAME]).await;
    // Authorizations live 8 h by default; the certificate 24 h.
    ca.clock.advance(Duration::hours(9));
    revoke(&ca, &other, &issued, Some(1))
        .await
        .expect_problem(403, "unauthorized");
    assert_revoked(&revoke(&ca, &owner, &issued, Some(1)).await);
}

#[tokio::test]
async fn bad_reasons_are_refused() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let issued = issue(&ca, &account, &[NAME]).await;
    for reason in [7, 8, 11, -1] {
        revoke(&ca, &account, &issued, Some(reason))
            .await
            .expect_problem_detail(
                400,
                "badRevocationReason",
                &format!(
                    "revocation reason {reason} is not allowed; use one of 0, 1, 2, 3, 4, 5, 6, 9, 10"
                ),
            );
    }
    assert!(fetch_crl(&ca).await.entries.is_empty());
}

#[tokio::test]
async fn unknown_or_altered_certificates_are_not_found() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let issued = issue(&ca, &account, &[NAME]).await;

    // A certificate this CA never issued.
    let key = rcgen::KeyPair::generate().unwrap();
    let foreign = rcgen::CertificateParams::new(vec![NAME.to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let foreign_serial = serial_hex(
        X509Certificate::from_der(foreign.der())
            .unwrap()
            .1
            .raw_serial(),
    );
    let payload = json!({"certificate": URL_SAFE_NO_PAD.encode(foreign.der())});
    ca.account_post(&account, REVOKE, Some(&payload))
        .await
        .expect_problem_detail(
            404,
            "malformed",
            &format!("no certificate with serial {foreign_serial} was issued by this CA"),
        );

    // Our serial, other bytes (the signature's last byte flipped).
    let mut altered = issued.der.clone();
    *altered.last_mut().unwrap() ^= 1;
    let payload = json!({"certificate": URL_SAFE_NO_PAD.encode(&altered)});
    ca.account_post(&account, REVOKE, Some(&payload))
        .await
        .expect_problem_detail(
            404,
            "malformed",
            &format!(
                "no certificate with serial {} was issued by this CA",
                issued.serial
            ),
        );

    for (name, payload, detail) in [
        (
            "not base64url",
            json!({"certificate": "***"}),
            "certificate is not base64url",
        ),
        (
            "not a certificate",
            json!({"certificate": "AAAA"}),
            "certificate is not a DER X.509 certificate",
        ),
    ] {
        let reply = ca.account_post(&account, REVOKE, Some(&payload)).await;
        let problem = reply.expect_problem(400, "malformed");
        assert_eq!(problem["detail"], detail, "{name}");
    }
}

#[tokio::test]
async fn leaves_carry_the_crl_distribution_point() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let issued = issue(&ca, &account, &[NAME]).await;
    let (_, cert) = X509Certificate::from_der(&issued.der).unwrap();
    let uris: Vec<String> = cert
        .extensions()
        .iter()
        .filter_map(|e| match e.parsed_extension() {
            ParsedExtension::CRLDistributionPoints(points) => Some(points),
            _ => None,
        })
        .flat_map(|points| points.points.iter())
        .filter_map(|point| match &point.distribution_point {
            Some(DistributionPointName::FullName(names)) => Some(names),
            _ => None,
        })
        .flatten()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some((*uri).to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(
        uris,
        vec![format!(
            "http://127.0.0.1:14080/crl/{}.crl",
            ca.issuer.crl_name()
        )]
    );
}

#[tokio::test]
async fn expired_certificates_drop_off_the_crl() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let old = issue(&ca, &account, &[NAME]).await;
    assert_revoked(&revoke(&ca, &account, &old, Some(1)).await);

    // The first certificate expires (24 h); one revoked now is listed alone.
    ca.clock.advance(Duration::hours(25));
    let new = issue(&ca, &account, &[NAME]).await;
    assert_revoked(&revoke(&ca, &account, &new, Some(5)).await);
    assert_eq!(fetch_crl(&ca).await.entries, vec![(new.serial, Some(5))]);
}

#[tokio::test]
async fn unknown_crl_names_are_404() {
    let ca = TestCa::new().await;
    for path in ["/crl/0000000000000000.crl", "/crl/nope", "/crl/"] {
        let response = ca
            .crl_router
            .clone()
            .oneshot(
                Request::builder()
                    .method(Method::GET)
                    .uri(path)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}
