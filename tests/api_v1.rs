//! The direct API (`/v1/sign`, `/v1/renew`, `/v1/revoke`), in process: tokens of a JWK
//! provisioner minted with `jose::sign_jwt`, the exact error documents, and what the issued
//! certificates say. Renewal over a real TLS listener is in `acme-tests/tests/v1_renew.rs`;
//! here the listener's verified client chain is injected as axum-server's `TlsInfo`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use axum_server::tls::TlsInfo;
use mayfly::config::{Config, HumanDuration};
use mayfly::issuer::serial_hex;
use mayfly::jose::{SigningKey, sign_jwt};
use mayfly::policy::PartialClaims;
use mayfly::provisioner::ProvisionerConfig;
use mayfly::provisioner::jwk::JwkProvisionerConfig;
use serde_json::{Value, json};
use support::{BASE, PROBLEM, Reply, TestCa, pem_certificates};
use time::Duration;
use time::format_description::well_known::Rfc3339;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

const SIGN: &str = "/v1/sign";
const RENEW: &str = "/v1/renew";
const REVOKE: &str = "/v1/revoke";
const WEB: &str = "web.test";
const WWW: &str = "www.web.test";

/// A CA with the JWK provisioner `ops`, whose key is returned; `edit` changes its settings.
async fn ca_with(
    edit: impl FnOnce(&mut Config, &mut JwkProvisionerConfig),
) -> (TestCa, SigningKey) {
    let key = SigningKey::generate_p256();
    let mut config = Config::default();
    let mut ops = JwkProvisionerConfig {
        key: Some(serde_json::to_string(&key.jwk()).unwrap()),
        ..JwkProvisionerConfig::default()
    };
    edit(&mut config, &mut ops);
    config
        .provisioners
        .insert("ops".into(), ProvisionerConfig::Jwk(ops));
    (TestCa::with_config(config).await, key)
}

async fn ca() -> (TestCa, SigningKey) {
    ca_with(|_, _| {}).await
}

/// A one-time token of `ops` for the URL of `path`, for `sub` and `sans`, living 5 minutes.
fn token(ca: &TestCa, key: &SigningKey, path: &str, sub: &str, sans: &[&str]) -> String {
    let now = ca.now().unix_timestamp();
    let claims = json!({
        "iss": "ops",
        "aud": format!("{BASE}{path}"),
        "sub": sub,
        "sans": sans,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": mayfly::authority::random_id(),
    });
    sign_jwt(key, Some(&key.jwk().thumbprint()), &claims)
}

/// A CSR (PEM) for DNS `names` and email addresses `emails`, and its key.
fn csr(names: &[&str], emails: &[&str]) -> (String, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .unwrap();
    for email in emails {
        params
            .subject_alt_names
            .push(rcgen::SanType::Rfc822Name((*email).try_into().unwrap()));
    }
    params.distinguished_name = rcgen::DistinguishedName::new();
    (params.serialize_request(&key).unwrap().pem().unwrap(), key)
}

async fn post(ca: &TestCa, path: &str, body: &Value) -> Reply {
    ca.post_bytes(path, "application/json", body.to_string().into_bytes())
        .await
}

/// Asserts a `/v1` error: the status, `application/problem+json`, exactly `type` and
/// `detail`; returns the detail.
fn expect_error(reply: &Reply, status: u16, kind: &str) -> String {
    let body = String::from_utf8_lossy(&reply.body).into_owned();
    assert_eq!(reply.status.as_u16(), status, "body: {body}");
    assert_eq!(reply.header("content-type"), Some(PROBLEM), "body: {body}");
    let error = reply.json();
    assert_eq!(error["type"], json!(kind), "body: {body}");
    let members: Vec<&String> = error.as_object().unwrap().keys().collect();
    assert_eq!(members, ["detail", "type"], "body: {body}");
    let detail = error["detail"].as_str().unwrap().to_owned();
    assert!(!detail.is_empty(), "body: {body}");
    detail
}

/// What a `/v1/sign` or `/v1/renew` answer says, checked against its own certificate.
struct Issued {
    der: Vec<u8>,
    serial: String,
    body: Value,
}

impl Issued {
    fn from_reply(reply: &Reply) -> Issued {
        let body = reply.expect_json(StatusCode::CREATED);
        let fullchain = body["fullchain"].as_str().unwrap();
        let certificate = body["certificate"].as_str().unwrap();
        let chain: Vec<&str> = body["chain"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert_eq!(chain.len(), 1, "one intermediate");
        assert_eq!(fullchain, format!("{certificate}{}", chain[0]));
        let der = pem_certificates(certificate.as_bytes()).remove(0);
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        let serial = serial_hex(cert.raw_serial());
        assert_eq!(body["serial"], json!(serial));
        let not_before = cert.validity().not_before.to_datetime();
        let not_after = cert.validity().not_after.to_datetime();
        assert_eq!(
            body["notBefore"],
            json!(not_before.format(&Rfc3339).unwrap())
        );
        assert_eq!(body["notAfter"], json!(not_after.format(&Rfc3339).unwrap()));
        Issued { der, serial, body }
    }

    fn certificate(&self) -> X509Certificate<'_> {
        X509Certificate::from_der(&self.der).unwrap().1
    }

    /// The subjectAltName entries, as `dns:…`, `ip:…`, `email:…`.
    fn sans(&self) -> Vec<String> {
        let cert = self.certificate();
        let san = cert.subject_alternative_name().unwrap().unwrap();
        san.value
            .general_names
            .iter()
            .map(|name| match name {
                GeneralName::DNSName(n) => format!("dns:{n}"),
                GeneralName::RFC822Name(e) => format!("email:{e}"),
                other => format!("{other}"),
            })
            .collect()
    }

    fn lifetime(&self) -> Duration {
        let cert = self.certificate();
        cert.validity().not_after.to_datetime() - cert.validity().not_before.to_datetime()
    }

    /// The verified client chain axum-server hands to handlers.
    fn tls_info(&self) -> Arc<TlsInfo> {
        let mut info = TlsInfo::default();
        info.peer_certificates = vec![self.der.clone()];
        Arc::new(info)
    }
}

async fn sign(ca: &TestCa, key: &SigningKey, names: &[&str]) -> Issued {
    let ott = token(ca, key, SIGN, names[0], names);
    let (csr, _) = csr(names, &[]);
    Issued::from_reply(&post(ca, SIGN, &json!({"csr": csr, "ott": ott})).await)
}

/// `POST /v1/renew` with `client` as the TLS client certificate (none: `None`).
async fn renew(ca: &TestCa, client: Option<&Issued>, body: &Value) -> Reply {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(RENEW)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(issued) = client {
        request = request.extension(issued.tls_info());
    }
    ca.send(request.body(Body::from(body.to_string())).unwrap())
        .await
}

// ---------------------------------------------------------------------------------------------
// /v1/sign

#[tokio::test]
async fn sign_issues_exactly_the_csr_names_for_a_day() {
    let (ca, key) = ca().await;
    let issued = sign(&ca, &key, &[WEB, WWW]).await;
    assert_eq!(issued.sans(), [format!("dns:{WEB}"), format!("dns:{WWW}")]);
    // The default profile (hours) under the default claims: 24 hours, backdated a minute.
    assert_eq!(
        issued.lifetime(),
        Duration::hours(24) + Duration::minutes(1)
    );
    let cert = issued.certificate();
    assert_eq!(
        cert.validity().not_after.to_datetime(),
        ca.now().replace_nanosecond(0).unwrap() + Duration::hours(24)
    );
    // The CSR may ask for fewer names than the token allows, and come as base64url DER.
    let ott = token(&ca, &key, SIGN, WEB, &[WEB, WWW]);
    let (csr, _) = csr(&[WWW], &[]);
    let der = x509_parser::pem::parse_x509_pem(csr.as_bytes())
        .unwrap()
        .1
        .contents;
    let csr = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, der);
    let reply = post(&ca, SIGN, &json!({"csr": csr, "ott": ott})).await;
    assert_eq!(Issued::from_reply(&reply).sans(), [format!("dns:{WWW}")]);
}

#[tokio::test]
async fn sign_validity_follows_the_provisioner_claims() {
    let (ca, key) = ca_with(|config, ops| {
        // A profile that sets no validity of its own, so the claims decide.
        let mut direct = config.profiles.profiles["hours"].clone();
        direct.validity = None;
        direct.max_cert_duration = None;
        config.profiles.profiles.insert("direct".into(), direct);
        ops.profiles = vec!["direct".into()];
        ops.claims = Some(PartialClaims {
            default_cert_duration: Some(HumanDuration::hours(2)),
            max_cert_duration: Some(HumanDuration::hours(4)),
            ..PartialClaims::default()
        });
    })
    .await;
    let issued = sign(&ca, &key, &[WEB]).await;
    assert_eq!(issued.lifetime(), Duration::hours(2) + Duration::minutes(1));

    // A notAfter within the claims is honoured; beyond them it is malformed.
    let not_after = ca.now().replace_nanosecond(0).unwrap() + Duration::hours(3);
    let (csr_pem, _) = csr(&[WEB], &[]);
    let body = json!({
        "csr": csr_pem,
        "ott": token(&ca, &key, SIGN, WEB, &[WEB]),
        "notAfter": not_after.format(&Rfc3339).unwrap(),
    });
    let issued = Issued::from_reply(&post(&ca, SIGN, &body).await);
    assert_eq!(
        issued.certificate().validity().not_after.to_datetime(),
        not_after
    );
    let body = json!({
        "csr": csr_pem,
        "ott": token(&ca, &key, SIGN, WEB, &[WEB]),
        "notAfter": (not_after + Duration::hours(2)).format(&Rfc3339).unwrap(),
    });
    expect_error(&post(&ca, SIGN, &body).await, 400, "malformed");

    // A profile the provisioner does not list is refused.
    let body = json!({
        "csr": csr_pem,
        "ott": token(&ca, &key, SIGN, WEB, &[WEB]),
        "profile": "shortlived",
    });
    expect_error(&post(&ca, SIGN, &body).await, 403, "profileNotAllowed");
}

#[tokio::test]
async fn a_replayed_token_is_refused() {
    let (ca, key) = ca().await;
    let ott = token(&ca, &key, SIGN, WEB, &[WEB]);
    let (csr, _) = csr(&[WEB], &[]);
    let body = json!({"csr": csr, "ott": ott});
    Issued::from_reply(&post(&ca, SIGN, &body).await);
    expect_error(&post(&ca, SIGN, &body).await, 401, "tokenReplayed");
}

/// A token bound to a key (`cnf.jkt`, as minted for an ACME account) signs only a CSR of that
/// key.
#[tokio::test]
async fn a_bound_token_signs_only_a_csr_of_its_key() {
    let (ca, key) = ca().await;
    let (pem, csr_key) = csr(&[WEB], &[]);
    let csr_thumbprint =
        mayfly::jose::Jwk::from_spki(&rcgen::PublicKeyData::subject_public_key_info(&csr_key))
            .unwrap()
            .thumbprint();
    let bound = |jkt: &str| {
        let now = ca.now().unix_timestamp();
        sign_jwt(
            &key,
            Some(&key.jwk().thumbprint()),
            &json!({"iss": "ops", "aud": format!("{BASE}{SIGN}"), "sub": WEB, "sans": [WEB],
                    "iat": now, "nbf": now, "exp": now + 300,
                    "jti": mayfly::authority::random_id(), "cnf": {"jkt": jkt}}),
        )
    };
    let other = SigningKey::generate_p256().jwk().thumbprint();
    let reply = post(&ca, SIGN, &json!({"csr": pem, "ott": bound(&other)})).await;
    expect_error(&reply, 401, "accountMismatch");
    let reply = post(
        &ca,
        SIGN,
        &json!({"csr": pem, "ott": bound(&csr_thumbprint)}),
    )
    .await;
    Issued::from_reply(&reply);
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let (ca, key) = ca().await;
    let (csr, _) = csr(&[WEB], &[]);
    for path in [REVOKE, "/acme/new-order"] {
        let ott = token(&ca, &key, path, WEB, &[WEB]);
        let reply = post(&ca, SIGN, &json!({"csr": csr, "ott": ott})).await;
        expect_error(&reply, 401, "badAudience");
    }
}

#[tokio::test]
async fn names_the_token_does_not_allow_are_refused() {
    let (ca, key) = ca().await;
    let ott = token(&ca, &key, SIGN, WEB, &[WEB]);
    let (two, _) = csr(&[WEB, "evil.test"], &[]);
    let detail = expect_error(
        &post(&ca, SIGN, &json!({"csr": two, "ott": ott})).await,
        403,
        "sanNotAllowed",
    );
    assert!(detail.contains("evil.test"), "{detail}");
    // An email address the token does not list, too.
    let ott = token(&ca, &key, SIGN, WEB, &[WEB]);
    let (with_email, _) = csr(&[WEB], &["eve@web.test"]);
    let reply = post(&ca, SIGN, &json!({"csr": with_email, "ott": ott})).await;
    expect_error(&reply, 403, "sanNotAllowed");
}

#[tokio::test]
async fn email_addresses_the_token_lists_are_issued() {
    let (ca, key) = ca().await;
    let ott = token(&ca, &key, SIGN, "alice", &["alice@web.test"]);
    let (csr, _) = csr(&[], &["alice@web.test"]);
    let issued = Issued::from_reply(&post(&ca, SIGN, &json!({"csr": csr, "ott": ott})).await);
    assert_eq!(issued.sans(), ["email:alice@web.test"]);
}

#[tokio::test]
async fn bad_requests_are_refused_with_their_reason() {
    let (ca, key) = ca().await;
    let ott = || token(&ca, &key, SIGN, WEB, &[WEB]);
    let cases: [(&str, Value, u16, &str); 5] = [
        (
            "garbage CSR",
            json!({"csr": "bm9wZQ", "ott": ott()}),
            400,
            "badCSR",
        ),
        (
            "not base64",
            json!({"csr": "%%%", "ott": ott()}),
            400,
            "badCSR",
        ),
        ("no ott", json!({"csr": "bm9wZQ"}), 400, "malformed"),
        (
            "an unknown member",
            json!({"csr": "bm9wZQ", "ott": ott(), "extra": 1}),
            400,
            "malformed",
        ),
        (
            "not a JWT",
            json!({"csr": csr(&[WEB], &[]).0, "ott": "x.y"}),
            401,
            "malformedToken",
        ),
    ];
    for (name, body, status, kind) in cases {
        let reply = post(&ca, SIGN, &body).await;
        let detail = expect_error(&reply, status, kind);
        assert!(!detail.is_empty(), "{name}");
    }
    let reply = ca
        .post_bytes(SIGN, "application/json", b"{not json".to_vec())
        .await;
    expect_error(&reply, 400, "malformed");
    let reply = ca.post_bytes(SIGN, "text/plain", b"{}".to_vec()).await;
    expect_error(&reply, 415, "malformed");
    let reply = ca.request(Method::GET, SIGN).await;
    expect_error(&reply, 405, "malformed");
    assert_eq!(reply.header("allow"), Some("POST"));
}

#[tokio::test]
async fn a_token_of_no_provisioner_is_refused() {
    let ca = TestCa::new().await;
    let stranger = SigningKey::generate_p256();
    let now = ca.now().unix_timestamp();
    let claims = json!({"iss": "nobody", "aud": format!("{BASE}{SIGN}"), "sub": WEB,
                        "iat": now, "exp": now + 60, "jti": "j"});
    let ott = sign_jwt(&stranger, None, &claims);
    let (csr, _) = csr(&[WEB], &[]);
    let reply = post(&ca, SIGN, &json!({"csr": csr, "ott": ott})).await;
    expect_error(&reply, 401, "unknownProvisioner");
    // An authentication failure for the audit log, named by the TokenError kind (issue 7).
    let authority = &ca.state.0.authority;
    authority.flush_audit().await;
    let page = authority
        .audit_events(&mayfly::storage::AuditFilter::default(), None, 10)
        .await
        .unwrap();
    let event = &page.events[0].event;
    assert_eq!(
        (
            event.kind.as_str(),
            event.object.as_str(),
            event.outcome.as_str()
        ),
        ("auth.refused", "path:/v1/sign", "failure")
    );
    assert_eq!(event.detail["reason"], "unknownProvisioner");
    assert_eq!(event.detail["status"], 401);
}

// ---------------------------------------------------------------------------------------------
// /v1/revoke

/// The CRL's entries (serial, reason), after checking its signature.
async fn crl_entries(ca: &TestCa) -> Vec<(String, Option<u8>)> {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    use x509_parser::revocation_list::CertificateRevocationList;
    let path = format!("/crl/{}.crl", ca.issuer.crl_name());
    let request = Request::get(&path).body(Body::empty()).unwrap();
    let response = ca.crl_router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let der = response.into_body().collect().await.unwrap().to_bytes();
    let (_, crl) = CertificateRevocationList::from_der(&der).unwrap();
    let (_, intermediate) = X509Certificate::from_der(ca.issuer.intermediate_der()).unwrap();
    crl.verify_signature(intermediate.public_key()).unwrap();
    crl.iter_revoked_certificates()
        .map(|e| (serial_hex(e.raw_serial()), e.reason_code().map(|r| r.1.0)))
        .collect()
}

#[tokio::test]
async fn revoke_by_serial_with_a_token() {
    let (ca, key) = ca().await;
    let issued = sign(&ca, &key, &[WEB]).await;
    // Colons and upper case are fine.
    let spelled = issued
        .serial
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":");
    let ott = token(&ca, &key, REVOKE, &issued.serial, &[]);
    let reply = post(
        &ca,
        REVOKE,
        &json!({"serial": spelled, "ott": ott, "reason": 1}),
    )
    .await;
    assert_eq!(
        reply.expect_json(StatusCode::OK),
        json!({"serial": issued.serial, "status": "revoked"})
    );
    assert_eq!(crl_entries(&ca).await, [(issued.serial.clone(), Some(1))]);
    let ott = token(&ca, &key, REVOKE, &issued.serial, &[]);
    let reply = post(&ca, REVOKE, &json!({"serial": issued.serial, "ott": ott})).await;
    expect_error(&reply, 400, "alreadyRevoked");
    // A revoked certificate is not renewed.
    expect_error(
        &renew(&ca, Some(&issued), &json!({})).await,
        403,
        "certificateRevoked",
    );
}

#[tokio::test]
async fn revoke_refuses_tokens_for_another_serial_or_audience() {
    let (ca, key) = ca().await;
    let issued = sign(&ca, &key, &[WEB]).await;
    let ott = token(&ca, &key, REVOKE, "4a0b", &[]);
    let reply = post(&ca, REVOKE, &json!({"serial": issued.serial, "ott": ott})).await;
    expect_error(&reply, 403, "serialMismatch");
    let ott = token(&ca, &key, SIGN, &issued.serial, &[]);
    let reply = post(&ca, REVOKE, &json!({"serial": issued.serial, "ott": ott})).await;
    expect_error(&reply, 401, "badAudience");
    let ott = token(&ca, &key, REVOKE, "4a0b", &[]);
    let reply = post(&ca, REVOKE, &json!({"serial": "4a0b", "ott": ott})).await;
    expect_error(&reply, 404, "notFound");
    let ott = token(&ca, &key, REVOKE, &issued.serial, &[]);
    let reply = post(
        &ca,
        REVOKE,
        &json!({"serial": issued.serial, "ott": ott, "reason": 7}),
    )
    .await;
    expect_error(&reply, 400, "badRevocationReason");
    let ott = token(&ca, &key, REVOKE, &issued.serial, &[]);
    let reply = post(&ca, REVOKE, &json!({"serial": "not hex", "ott": ott})).await;
    expect_error(&reply, 400, "malformed");
}

// ---------------------------------------------------------------------------------------------
// /v1/renew (the TLS client chain injected)

#[tokio::test]
async fn renew_issues_the_same_names_again() {
    let (ca, key) = ca().await;
    let issued = sign(&ca, &key, &[WEB, WWW]).await;
    ca.clock.advance(Duration::hours(12));
    let renewed = Issued::from_reply(&renew(&ca, Some(&issued), &json!({})).await);
    assert_ne!(renewed.serial, issued.serial);
    assert_eq!(renewed.sans(), issued.sans());
    assert_eq!(
        renewed.lifetime(),
        Duration::hours(24) + Duration::minutes(1)
    );
    assert_eq!(
        renewed.certificate().public_key().raw,
        issued.certificate().public_key().raw,
        "the key is kept"
    );
    assert_eq!(
        renewed.certificate().validity().not_after.to_datetime(),
        ca.now().replace_nanosecond(0).unwrap() + Duration::hours(24)
    );
    // The renewed certificate renews in turn, and an empty body reads as {}.
    let reply = ca
        .send(
            Request::builder()
                .method(Method::POST)
                .uri(RENEW)
                .header(header::CONTENT_TYPE, "application/json")
                .extension(renewed.tls_info())
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    Issued::from_reply(&reply);
    let _ = &renewed.body;
}

#[tokio::test]
async fn renew_with_a_csr_rotates_the_key_but_not_the_names() {
    let (ca, key) = ca().await;
    let issued = sign(&ca, &key, &[WEB]).await;
    let (same, _) = csr(&[WEB], &[]);
    let renewed = Issued::from_reply(&renew(&ca, Some(&issued), &json!({"csr": same})).await);
    assert_eq!(renewed.sans(), issued.sans());
    assert_ne!(
        renewed.certificate().public_key().raw,
        issued.certificate().public_key().raw
    );
    let (other, _) = csr(&[WEB, WWW], &[]);
    let reply = renew(&ca, Some(&issued), &json!({"csr": other})).await;
    expect_error(&reply, 400, "badCSR");
}

#[tokio::test]
async fn renew_without_a_client_certificate_is_refused() {
    let ca = TestCa::new().await;
    expect_error(
        &renew(&ca, None, &json!({})).await,
        401,
        "certificateRequired",
    );
}

#[tokio::test]
async fn renew_needs_a_known_client_certificate() {
    let (ca, key) = ca().await;
    let issued = sign(&ca, &key, &[WEB]).await;
    // A certificate that is not the stored one (same serial, other bytes) is unknown.
    let mut forged = Issued {
        der: issued.der.clone(),
        serial: issued.serial.clone(),
        body: Value::Null,
    };
    let last = forged.der.len() - 1;
    forged.der[last] ^= 1;
    expect_error(
        &renew(&ca, Some(&forged), &json!({})).await,
        401,
        "unknownCertificate",
    );
}

#[tokio::test]
async fn renew_is_refused_when_the_provisioner_disables_it() {
    let (ca, key) = ca_with(|_, ops| {
        ops.claims = Some(PartialClaims {
            disable_renewal: Some(true),
            ..PartialClaims::default()
        });
    })
    .await;
    let issued = sign(&ca, &key, &[WEB]).await;
    expect_error(
        &renew(&ca, Some(&issued), &json!({})).await,
        403,
        "renewalDisabled",
    );
}

#[tokio::test]
async fn renew_after_expiry_only_if_the_claims_allow_it() {
    let (ca, key) = ca().await;
    let issued = sign(&ca, &key, &[WEB]).await;
    ca.clock.advance(Duration::hours(25));
    expect_error(
        &renew(&ca, Some(&issued), &json!({})).await,
        403,
        "certificateExpired",
    );

    let (ca, key) = ca_with(|_, ops| {
        ops.claims = Some(PartialClaims {
            allow_renewal_after_expiry: Some(true),
            ..PartialClaims::default()
        });
    })
    .await;
    let issued = sign(&ca, &key, &[WEB]).await;
    ca.clock.advance(Duration::hours(25));
    let renewed = Issued::from_reply(&renew(&ca, Some(&issued), &json!({})).await);
    assert_eq!(renewed.sans(), issued.sans());
}

/// A static provisioner (Anchor's user and secret; development only) signs without a token;
/// a wrong secret is `badCredentials`, and mixing both ways is malformed.
#[tokio::test]
async fn a_static_provisioner_signs_with_its_user_and_secret() {
    use mayfly::provisioner::StaticProvisionerConfig;
    let (ca, key) = ca_with(|config, _| {
        config.provisioners.insert(
            "dev".into(),
            ProvisionerConfig::Static(StaticProvisionerConfig {
                user: "dev".into(),
                secret: "sixteen-chars-ok".into(),
                ..StaticProvisionerConfig::default()
            }),
        );
    })
    .await;
    let (pem, _) = csr(&[WEB], &[]);
    let with =
        |secret: &str| json!({"csr": pem, "provisioner": "dev", "user": "dev", "secret": secret});
    let issued = Issued::from_reply(&post(&ca, SIGN, &with("sixteen-chars-ok")).await);
    assert!(!issued.serial.is_empty());
    expect_error(
        &post(&ca, SIGN, &with("sixteen-chars-no")).await,
        401,
        "badCredentials",
    );
    let unknown = json!({"csr": pem, "provisioner": "ops", "user": "dev", "secret": "x"});
    expect_error(&post(&ca, SIGN, &unknown).await, 401, "unknownProvisioner");
    let mut both = with("sixteen-chars-ok");
    both["ott"] = json!(token(&ca, &key, SIGN, WEB, &[WEB]));
    expect_error(&post(&ca, SIGN, &both).await, 400, "malformed");
}
