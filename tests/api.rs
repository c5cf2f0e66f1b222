//! In-process API tests (STYLE 12): the whole app behind its router, driven with `oneshot`.
//! Each test pins one user-visible behaviour: status, exact problem type, headers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use axum::http::{Method, StatusCode};
use mayfly::jose::{KeyRef, SigningKey, base64url, sign_jws, sign_jws_raw};
use serde_json::{Value, json};
use support::{BASE, JOSE, NAME, PROBLEM, TestCa, csr, csr_with, path_of, pem_certificates, url};
use time::Duration;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

const LINK_INDEX: &str = "<https://127.0.0.1:14000/directory>;rel=\"index\"";

// ---------------------------------------------------------------------------------------------
// The happy path

#[tokio::test]
async fn directory_lists_the_resources() {
    let ca = TestCa::new().await;
    let reply = ca.request(Method::GET, "/directory").await;
    let directory = reply.expect_json(StatusCode::OK);
    assert_eq!(
        directory,
        json!({
            "newNonce": format!("{BASE}/acme/new-nonce"),
            "newAccount": format!("{BASE}/acme/new-account"),
            "newOrder": format!("{BASE}/acme/new-order"),
            "newAuthz": format!("{BASE}/acme/new-authz"),
            "keyChange": format!("{BASE}/acme/key-change"),
            "revokeCert": format!("{BASE}/acme/revoke-cert"),
            "renewalInfo": format!("{BASE}/acme/renewal-info"),
            "meta": {
                "caaIdentities": [],
                "externalAccountRequired": false,
                "profiles": {
                    "hours": "24-hour TLS server certificates (Anchor's default)",
                    "shortlived": "160-hour TLS server certificates (as Let's Encrypt's shortlived), 7-hour authorizations",
                    "tlsclient": "24-hour TLS client certificates, for service-to-service mutual TLS",
                },
            },
        })
    );
}

#[tokio::test]
async fn new_account_creates_then_returns_the_existing_account() {
    let ca = TestCa::new().await;
    let key = SigningKey::generate_p256();
    let payload = json!({"contact": ["mailto:admin@example.com"], "termsOfServiceAgreed": true});
    let created = ca
        .post(&key, KeyRef::Jwk, "/acme/new-account", Some(&payload))
        .await;
    let body = created.expect_json(StatusCode::CREATED);
    let location = created.location();
    assert!(
        location.starts_with(&format!("{BASE}/acme/account/")),
        "{location}"
    );
    assert_eq!(body["status"], "valid");
    assert_eq!(body["contact"], json!(["mailto:admin@example.com"]));
    assert_eq!(body["key"], json!(key.jwk()));

    let again = ca
        .post(&key, KeyRef::Jwk, "/acme/new-account", Some(&json!({})))
        .await;
    again.expect_json(StatusCode::OK);
    assert_eq!(again.location(), location);

    let existing = ca
        .post(
            &key,
            KeyRef::Jwk,
            "/acme/new-account",
            Some(&json!({"onlyReturnExisting": true})),
        )
        .await;
    existing.expect_json(StatusCode::OK);
    assert_eq!(existing.location(), location);
}

#[tokio::test]
async fn only_return_existing_with_a_new_key_is_account_does_not_exist() {
    let ca = TestCa::new().await;
    let key = SigningKey::generate_p256();
    let reply = ca
        .post(
            &key,
            KeyRef::Jwk,
            "/acme/new-account",
            Some(&json!({"onlyReturnExisting": true})),
        )
        .await;
    reply.expect_problem_detail(
        400,
        "accountDoesNotExist",
        "no account exists for this key (onlyReturnExisting)",
    );
}

#[tokio::test]
async fn account_post_as_get_returns_the_account() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let reply = ca.post_as_get(&account, &account.url).await;
    let body = reply.expect_json(StatusCode::OK);
    assert_eq!(reply.location(), account.url);
    assert_eq!(body["status"], "valid");
    assert_eq!(body["key"], json!(account.key.jwk()));
}

#[tokio::test]
async fn happy_path_issues_a_certificate_end_to_end() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;

    // newOrder: pending, one authorization.
    let reply = ca.new_order_reply(&account, &[NAME]).await;
    let order = reply.expect_json(StatusCode::CREATED);
    let order_url = reply.location();
    assert!(
        order_url.starts_with(&format!("{BASE}/acme/order/")),
        "{order_url}"
    );
    assert_eq!(order["status"], "pending");
    assert_eq!(
        order["identifiers"],
        json!([{"type": "dns", "value": NAME}])
    );
    assert_eq!(order["authorizations"].as_array().unwrap().len(), 1);
    assert_eq!(order["finalize"], json!(format!("{order_url}/finalize")));
    assert!(order.get("certificate").is_none());

    // A DNS name is offered http-01, dns-01 and tls-alpn-01; this test answers http-01.
    let authz_url = order["authorizations"][0].as_str().unwrap();
    let authz = ca.fetch(&account, authz_url).await;
    assert_eq!(authz["status"], "pending");
    assert_eq!(authz["identifier"], json!({"type": "dns", "value": NAME}));
    let challenges = authz["challenges"].as_array().unwrap();
    let types: Vec<&str> = challenges
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["http-01", "dns-01", "tls-alpn-01"]);
    let challenge = &challenges[0];
    assert_eq!(challenge["type"], "http-01");
    assert_eq!(challenge["status"], "pending");
    let token = challenge["token"].as_str().unwrap();
    assert!(token.len() >= 43, "128 bits of entropy at least: {token}");

    // Respond; validation runs in the background.
    let challenge_url = challenge["url"].as_str().unwrap();
    ca.serve_key_authorization(&account, token);
    let reply = ca
        .account_post(&account, challenge_url, Some(&json!({})))
        .await;
    let responded = reply.expect_json(StatusCode::OK);
    match responded["status"].as_str() {
        Some("processing") => assert_eq!(reply.header("retry-after"), Some("1")),
        Some("valid") => assert_eq!(reply.header("retry-after"), None),
        _ => panic!("unexpected challenge after responding: {responded}"),
    }
    let up = format!("<{authz_url}>;rel=\"up\"");
    let links: Vec<&str> = reply
        .headers
        .get_all("link")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(links.contains(&up.as_str()), "{links:?}");

    let done = ca.poll_challenge(&account, challenge_url).await;
    assert_eq!(done["status"], "valid", "{done}");
    assert!(done["validated"].is_string());
    assert!(done.get("error").is_none());
    assert_eq!(ca.fetch(&account, authz_url).await["status"], "valid");
    let order = ca.fetch(&account, &order_url).await;
    assert_eq!(order["status"], "ready");

    // Finalize with a separate key; the order becomes valid at once.
    let issued_at = ca.now();
    let reply = ca.finalize(&account, &order, &csr(&[NAME])).await;
    let order = reply.expect_json(StatusCode::OK);
    assert_eq!(reply.location(), order_url);
    assert_eq!(order["status"], "valid", "{order}");
    let cert_url = order["certificate"].as_str().unwrap();
    assert!(cert_url.starts_with(&format!("{BASE}/acme/cert/")));

    // Download: leaf + intermediate.
    let reply = ca.post_as_get(&account, cert_url).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-type"),
        Some("application/pem-certificate-chain")
    );
    let chain = pem_certificates(&reply.body);
    assert_eq!(chain.len(), 2);
    let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
    let (_, intermediate) = X509Certificate::from_der(&chain[1]).unwrap();
    let root_der = pem_certificates(ca.issuer.root_pem().as_bytes()).remove(0);
    let (_, root) = X509Certificate::from_der(&root_der).unwrap();

    let sans: Vec<String> = leaf
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => (*d).to_owned(),
            other => panic!("unexpected SAN {other:?}"),
        })
        .collect();
    assert_eq!(sans, vec![NAME.to_owned()]);

    let not_before = leaf.validity().not_before.to_datetime();
    let not_after = leaf.validity().not_after.to_datetime();
    assert_eq!(not_before, issued_at - Duration::minutes(1));
    assert_eq!(not_after, issued_at + Duration::hours(24));
    assert_eq!(
        not_after - not_before,
        Duration::hours(24) + Duration::minutes(1)
    );

    leaf.verify_signature(Some(intermediate.public_key()))
        .expect("the leaf is signed by the intermediate");
    intermediate
        .verify_signature(Some(root.public_key()))
        .expect("the intermediate is signed by the root");
    assert_eq!(leaf.issuer(), intermediate.subject());
}

#[tokio::test]
async fn finalize_covers_every_name_of_a_multi_name_order() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let (_, order) = ca.ready_order(&account, &[NAME, "b.example.com"]).await;
    assert_eq!(order["authorizations"].as_array().unwrap().len(), 2);
    // The CSR may list the names in another order.
    let reply = ca
        .finalize(&account, &order, &csr(&["b.example.com", NAME]))
        .await;
    let order = reply.expect_json(StatusCode::OK);
    assert_eq!(order["status"], "valid");
}

#[tokio::test]
async fn ip_identifier_is_validated_and_issued() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let payload = json!({"identifiers": [{"type": "ip", "value": "127.0.0.1"}]});
    let reply = ca
        .account_post(&account, "/acme/new-order", Some(&payload))
        .await;
    let order = reply.expect_json(StatusCode::CREATED);
    let order_url = reply.location();
    let (_, challenge) = ca.first_challenge(&account, &order).await;
    ca.serve_key_authorization(&account, challenge["token"].as_str().unwrap());
    let challenge_url = challenge["url"].as_str().unwrap();
    ca.respond(&account, challenge_url).await;
    assert_eq!(
        ca.poll_challenge(&account, challenge_url).await["status"],
        "valid"
    );
    assert_eq!(ca.fetch(&account, &order_url).await["status"], "ready");

    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.subject_alt_names = vec![rcgen::SanType::IpAddress([127, 0, 0, 1].into())];
    let csr_der = params.serialize_request(&key).unwrap().der().to_vec();
    let order = ca
        .finalize(&account, &order, &csr_der)
        .await
        .expect_json(StatusCode::OK);
    let reply = ca
        .post_as_get(&account, order["certificate"].as_str().unwrap())
        .await;
    let chain = pem_certificates(&reply.body);
    let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        san.value.general_names,
        vec![GeneralName::IPAddress(&[127, 0, 0, 1])]
    );
}

#[tokio::test]
async fn every_supported_account_key_type_can_order() {
    let ca = TestCa::new().await;
    for key in [
        SigningKey::generate_p384(),
        SigningKey::generate_ed25519(),
        SigningKey::generate_rsa2048(),
    ] {
        let alg = key.alg();
        let reply = ca
            .post(&key, KeyRef::Jwk, "/acme/new-account", Some(&json!({})))
            .await;
        reply.expect_json(StatusCode::CREATED);
        let account = support::Account {
            key,
            url: reply.location(),
        };
        let reply = ca.new_order_reply(&account, &[NAME]).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{alg}");
    }
}

#[tokio::test]
async fn bad_account_keys_are_bad_public_key() {
    let ca = TestCa::new().await;
    let key = SigningKey::generate_p256();
    let jwk = serde_json::to_value(key.jwk()).unwrap();
    let mut off_curve = jwk.clone();
    off_curve["y"] = json!(base64url(&[1u8; 32]));
    let mut short_x = jwk.clone();
    short_x["x"] = json!(base64url(&[1u8; 31]));
    let mut private = jwk.clone();
    private["d"] = json!(base64url(&[1u8; 32]));
    let small_rsa = json!({"kty": "RSA", "n": base64url(&[0xc1u8; 128]), "e": "AQAB"});
    let unknown_curve = json!({"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"});
    let cases = [
        (off_curve, "the P-256 key is not valid"),
        (short_x, "the JWK member \"x\" has 31 bytes; P-256 needs 32"),
        (
            private,
            "the JWK contains the private member \"d\"; send the public key only",
        ),
        (
            small_rsa,
            "the RSA modulus has 1024 bits; 2048 to 8192 are accepted",
        ),
        (
            unknown_curve,
            "unsupported curve \"P-521\"; supported: P-256, P-384, Ed25519",
        ),
        (
            json!({"kty": "oct", "k": "AAAA"}),
            "the JWK contains the private member \"k\"; send the public key only",
        ),
    ];
    for (jwk, detail) in cases {
        let header = json!({
            "alg": "ES256",
            "jwk": jwk,
            "nonce": ca.nonce().await,
            "url": url("/acme/new-account"),
        });
        let reply = ca
            .post_jws("/acme/new-account", &signed(&key, header, &json!({})))
            .await;
        reply.expect_problem_detail(400, "badPublicKey", detail);
    }
}

#[tokio::test]
async fn configured_terms_and_caa_identities_are_in_the_directory_and_enforced() {
    let mut config = mayfly::config::Config::default();
    config.acme.terms_of_service = Some("https://ca.example/tos".into());
    config.acme.website = Some("https://ca.example".into());
    config.acme.caa_identities = vec!["ca.example".into()];
    let ca = TestCa::with_config(config).await;
    let directory = ca
        .request(Method::GET, "/directory")
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(
        directory["meta"],
        json!({
            "termsOfService": "https://ca.example/tos",
            "website": "https://ca.example",
            "caaIdentities": ["ca.example"],
            "externalAccountRequired": false,
            "profiles": directory["meta"]["profiles"],
        })
    );

    let key = SigningKey::generate_p256();
    for payload in [json!({}), json!({"termsOfServiceAgreed": false})] {
        let reply = ca
            .post(&key, KeyRef::Jwk, "/acme/new-account", Some(&payload))
            .await;
        reply.expect_problem_detail(
            403,
            "userActionRequired",
            "the terms of service must be agreed to (termsOfServiceAgreed: true)",
        );
        // RFC 8555 §7.3.3: the problem points at the terms to agree to.
        let links: Vec<&str> = reply
            .headers
            .get_all("link")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert!(
            links.contains(&"<https://ca.example/tos>;rel=\"terms-of-service\""),
            "{links:?}"
        );
    }
    ca.post(
        &key,
        KeyRef::Jwk,
        "/acme/new-account",
        Some(&json!({"termsOfServiceAgreed": true})),
    )
    .await
    .expect_json(StatusCode::CREATED);
}

#[tokio::test]
async fn identifiers_are_normalised_and_deduplicated() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let (_, order) = ca
        .new_order(&account, &["A.Example.COM", NAME, "b.example.com"])
        .await;
    assert_eq!(
        order["identifiers"],
        json!([
            {"type": "dns", "value": NAME},
            {"type": "dns", "value": "b.example.com"},
        ])
    );
    assert_eq!(order["authorizations"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn too_many_identifiers_is_rejected_identifier() {
    let mut config = mayfly::config::Config::default();
    // The most names in one order is set per profile (issue 4); this is the default one.
    config.profiles.profiles.get_mut("hours").unwrap().max_names = 2;
    let ca = TestCa::with_config(config).await;
    let account = ca.new_account().await;
    ca.new_order(&account, &[NAME, "b.example.com"]).await;
    let reply = ca
        .new_order_reply(&account, &[NAME, "b.example.com", "c.example.com"])
        .await;
    reply.expect_problem_detail(
        400,
        "rejectedIdentifier",
        "the order has 3 identifiers; the profile hours allows at most 2",
    );
}

#[tokio::test]
async fn concurrent_finalize_issues_once() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let (order_url, order) = ca.ready_order(&account, &[NAME]).await;
    let (csr_a, csr_b) = (csr(&[NAME]), csr(&[NAME]));
    let (a, b) = tokio::join!(
        ca.finalize(&account, &order, &csr_a),
        ca.finalize(&account, &order, &csr_b)
    );
    let (winner, loser) = if a.status == StatusCode::OK {
        (a, b)
    } else {
        (b, a)
    };
    let issued = winner.expect_json(StatusCode::OK);
    assert_eq!(issued["status"], "valid");
    loser.expect_problem(403, "orderNotReady");
    let order = ca.fetch(&account, &order_url).await;
    assert_eq!(order["certificate"], issued["certificate"]);
}

#[tokio::test]
async fn concurrent_challenge_responses_validate_once() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let (_, order) = ca.new_order(&account, &[NAME]).await;
    let (authz_url, challenge) = ca.first_challenge(&account, &order).await;
    ca.serve_key_authorization(&account, challenge["token"].as_str().unwrap());
    let url = challenge["url"].as_str().unwrap();
    let (a, b) = tokio::join!(ca.respond(&account, url), ca.respond(&account, url));
    for c in [a, b] {
        assert!(c["status"] == "processing" || c["status"] == "valid", "{c}");
    }
    assert_eq!(ca.poll_challenge(&account, url).await["status"], "valid");
    assert_eq!(ca.fetch(&account, &authz_url).await["status"], "valid");
}

// ---------------------------------------------------------------------------------------------
// Nonces and the headers on every response

#[tokio::test]
async fn new_nonce_head_is_200_and_get_is_204() {
    let ca = TestCa::new().await;
    for (method, status) in [
        (Method::HEAD, StatusCode::OK),
        (Method::GET, StatusCode::NO_CONTENT),
    ] {
        let reply = ca.request(method.clone(), "/acme/new-nonce").await;
        assert_eq!(reply.status, status, "{method}");
        let nonce = reply.header("replay-nonce").expect("Replay-Nonce");
        assert!(
            !nonce.is_empty()
                && nonce
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "a nonce is base64url: {nonce}"
        );
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{method}");
        assert_eq!(reply.header("link"), Some(LINK_INDEX), "{method}");
        assert!(reply.body.is_empty());
    }
}

#[tokio::test]
async fn nonces_are_fresh_each_time() {
    let ca = TestCa::new().await;
    let a = ca.nonce().await;
    let b = ca.nonce().await;
    assert_ne!(a, b);
}

#[tokio::test]
async fn every_post_response_carries_a_fresh_usable_nonce_errors_included() {
    let ca = TestCa::new().await;
    let key = SigningKey::generate_p256();

    // An error: newAccount with a kid that is not ours.
    let nonce = ca.nonce().await;
    let jws = sign_jws(
        &key,
        KeyRef::Kid("https://elsewhere.example/acct/1"),
        Some(&nonce),
        &url("/acme/new-account"),
        Some(&json!({})),
    );
    let error = ca.post_jws("/acme/new-account", &jws).await;
    error.expect_problem(400, "accountDoesNotExist");
    let from_error = error.header("replay-nonce").expect("a nonce on the error");
    assert_ne!(from_error, nonce);
    assert_eq!(error.header("cache-control"), Some("no-store"));
    assert_eq!(error.header("link"), Some(LINK_INDEX));

    // That nonce works; so does the one on the success.
    let jws = sign_jws(
        &key,
        KeyRef::Jwk,
        Some(from_error),
        &url("/acme/new-account"),
        Some(&json!({})),
    );
    let created = ca.post_jws("/acme/new-account", &jws).await;
    created.expect_json(StatusCode::CREATED);
    let from_success = created.header("replay-nonce").expect("a nonce on success");
    assert_ne!(from_success, from_error);
    assert_eq!(created.header("link"), Some(LINK_INDEX));
    let jws = sign_jws(
        &key,
        KeyRef::Jwk,
        Some(from_success),
        &url("/acme/new-account"),
        Some(&json!({})),
    );
    ca.post_jws("/acme/new-account", &jws)
        .await
        .expect_json(StatusCode::OK);

    // A request that is not even a JWS gets one too.
    let garbage = ca
        .post_bytes("/acme/new-order", JOSE, b"nope".to_vec())
        .await;
    garbage.expect_problem(400, "malformed");
    assert!(garbage.header("replay-nonce").is_some());
}

#[tokio::test]
async fn every_response_links_to_the_directory() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let replies = [
        (
            "GET /directory",
            ca.request(Method::GET, "/directory").await,
        ),
        (
            "HEAD new-nonce",
            ca.request(Method::HEAD, "/acme/new-nonce").await,
        ),
        (
            "GET new-nonce",
            ca.request(Method::GET, "/acme/new-nonce").await,
        ),
        (
            "GET account (405)",
            ca.request(Method::GET, path_of(&account.url)).await,
        ),
        (
            "unknown path (404)",
            ca.request(Method::GET, "/no/such/thing").await,
        ),
        (
            "POST-as-GET account",
            ca.post_as_get(&account, &account.url).await,
        ),
        (
            "bad request",
            ca.post_bytes("/acme/new-order", JOSE, Vec::new()).await,
        ),
    ];
    for (name, reply) in replies {
        let links: Vec<&str> = reply
            .headers
            .get_all("link")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert!(links.contains(&LINK_INDEX), "{name}: {links:?}");
    }
}

#[tokio::test]
async fn unknown_path_is_a_404_problem() {
    let ca = TestCa::new().await;
    let reply = ca.request(Method::GET, "/no/such/thing").await;
    reply.expect_problem_detail(404, "malformed", "no such resource");
}

// ---------------------------------------------------------------------------------------------
// Methods

#[tokio::test]
async fn plain_get_on_acme_resources_is_405_with_allow_post() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let (order_url, order) = ca.ready_order(&account, &[NAME]).await;
    let authz_url = order["authorizations"][0].as_str().unwrap().to_owned();
    let challenge_url = ca.fetch(&account, &authz_url).await["challenges"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = ca
        .finalize(&account, &order, &csr(&[NAME]))
        .await
        .expect_json(StatusCode::OK);
    let cert_url = done["certificate"].as_str().unwrap().to_owned();

    let urls = [
        account.url.clone(),
        order_url.clone(),
        format!("{order_url}/finalize"),
        authz_url,
        challenge_url,
        cert_url,
        url("/acme/new-account"),
        url("/acme/new-order"),
    ];
    for target in &urls {
        let reply = ca.request(Method::GET, path_of(target)).await;
        reply.expect_problem_detail(405, "malformed", "method GET is not allowed here");
        assert_eq!(reply.header("allow"), Some("POST"), "{target}");
        assert_eq!(reply.header("link"), Some(LINK_INDEX), "{target}");
    }
}

#[tokio::test]
async fn post_to_directory_and_new_nonce_is_405_with_their_own_allow() {
    let ca = TestCa::new().await;
    let cases = [
        ("/directory", "GET, HEAD"),
        ("/acme/new-nonce", "GET, HEAD"),
    ];
    for (path, allow) in cases {
        let reply = ca.post_bytes(path, JOSE, b"{}".to_vec()).await;
        reply.expect_problem_detail(405, "malformed", "method POST is not allowed here");
        assert_eq!(reply.header("allow"), Some(allow), "{path}");
    }
}

// ---------------------------------------------------------------------------------------------
// Bad requests: the protocol checks

/// A correctly signed newOrder for `NAME` by `account`, with this protected header.
fn signed(key: &SigningKey, header: Value, payload: &Value) -> Value {
    sign_jws_raw(key, header, payload.to_string().as_bytes())
}

fn order_payload() -> Value {
    json!({"identifiers": [{"type": "dns", "value": NAME}]})
}

#[tokio::test]
async fn never_issued_nonce_is_bad_nonce() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    // Well-formed base64url of the right length, but not authenticated by the server.
    let forged = base64url(&[7u8; 56]);
    let jws = sign_jws(
        &account.key,
        KeyRef::Kid(&account.url),
        Some(&forged),
        &url("/acme/new-order"),
        Some(&order_payload()),
    );
    let reply = ca.post_jws("/acme/new-order", &jws).await;
    reply.expect_problem_detail(400, "badNonce", "the nonce was not issued by this server");

    let jws = sign_jws(
        &account.key,
        KeyRef::Kid(&account.url),
        Some("not a nonce!"),
        &url("/acme/new-order"),
        Some(&order_payload()),
    );
    let reply = ca.post_jws("/acme/new-order", &jws).await;
    reply.expect_problem_detail(400, "badNonce", "the nonce is not base64url");
}

#[tokio::test]
async fn reused_nonce_is_bad_nonce() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let nonce = ca.nonce().await;
    let jws = sign_jws(
        &account.key,
        KeyRef::Kid(&account.url),
        Some(&nonce),
        &url("/acme/new-order"),
        Some(&order_payload()),
    );
    ca.post_jws("/acme/new-order", &jws)
        .await
        .expect_json(StatusCode::CREATED);
    let replay = ca.post_jws("/acme/new-order", &jws).await;
    replay.expect_problem_detail(400, "badNonce", "the nonce was already used");
}

#[tokio::test]
async fn missing_nonce_is_bad_nonce() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let jws = sign_jws(
        &account.key,
        KeyRef::Kid(&account.url),
        None,
        &url("/acme/new-order"),
        Some(&order_payload()),
    );
    let reply = ca.post_jws("/acme/new-order", &jws).await;
    reply.expect_problem_detail(400, "badNonce", "the JWS has no nonce");
}

#[tokio::test]
async fn a_rejected_request_does_not_use_up_its_nonce() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let nonce = ca.nonce().await;
    let wrong_url = sign_jws(
        &account.key,
        KeyRef::Kid(&account.url),
        Some(&nonce),
        &url("/acme/new-account"),
        Some(&order_payload()),
    );
    ca.post_jws("/acme/new-order", &wrong_url)
        .await
        .expect_problem(403, "unauthorized");
    let right = sign_jws(
        &account.key,
        KeyRef::Kid(&account.url),
        Some(&nonce),
        &url("/acme/new-order"),
        Some(&order_payload()),
    );
    ca.post_jws("/acme/new-order", &right)
        .await
        .expect_json(StatusCode::CREATED);
}

#[tokio::test]
async fn wrong_url_is_unauthorized() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let nonce = ca.nonce().await;
    let jws = sign_jws(
        &account.key,
        KeyRef::Kid(&account.url),
        Some(&nonce),
        "https://127.0.0.1:14000/acme/new-account",
        Some(&order_payload()),
    );
    let reply = ca.post_jws("/acme/new-order", &jws).await;
    reply.expect_problem_detail(
        403,
        "unauthorized",
        "the JWS url \"https://127.0.0.1:14000/acme/new-account\" is not the request URL \"https://127.0.0.1:14000/acme/new-order\"",
    );
}

#[tokio::test]
async fn both_jwk_and_kid_is_malformed() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let header = json!({
        "alg": "ES256",
        "jwk": account.key.jwk(),
        "kid": account.url,
        "nonce": ca.nonce().await,
        "url": url("/acme/new-order"),
    });
    let reply = ca
        .post_jws(
            "/acme/new-order",
            &signed(&account.key, header, &order_payload()),
        )
        .await;
    reply.expect_problem_detail(
        400,
        "malformed",
        "the JWS header has both \"jwk\" and \"kid\"; send exactly one",
    );
}

#[tokio::test]
async fn neither_jwk_nor_kid_is_malformed() {
    let ca = TestCa::new().await;
    let key = SigningKey::generate_p256();
    let header =
        json!({"alg": "ES256", "nonce": ca.nonce().await, "url": url("/acme/new-account")});
    let reply = ca
        .post_jws("/acme/new-account", &signed(&key, header, &json!({})))
        .await;
    reply.expect_problem_detail(
        400,
        "malformed",
        "the JWS header has neither \"jwk\" nor \"kid\"; send exactly one",
    );
}

#[tokio::test]
async fn unknown_kid_is_account_does_not_exist() {
    let ca = TestCa::new().await;
    let key = SigningKey::generate_p256();
    let kid = format!("{BASE}/acme/account/no-such-account");
    let reply = ca
        .post(
            &key,
            KeyRef::Kid(&kid),
            "/acme/new-order",
            Some(&order_payload()),
        )
        .await;
    reply.expect_problem_detail(
        400,
        "accountDoesNotExist",
        "account no-such-account does not exist",
    );
}

#[tokio::test]
async fn foreign_kid_is_account_does_not_exist() {
    let ca = TestCa::new().await;
    let key = SigningKey::generate_p256();
    let kid = "https://other.example/acme/account/abc";
    let reply = ca
        .post(
            &key,
            KeyRef::Kid(kid),
            "/acme/new-order",
            Some(&order_payload()),
        )
        .await;
    reply.expect_problem(400, "accountDoesNotExist");
}

#[tokio::test]
async fn unsupported_algorithms_are_bad_signature_algorithm() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    for alg in ["HS256", "none", "RS512", "PS256", "ES512"] {
        let header = json!({
            "alg": alg,
            "kid": account.url,
            "nonce": ca.nonce().await,
            "url": url("/acme/new-order"),
        });
        let reply = ca
            .post_jws(
                "/acme/new-order",
                &signed(&account.key, header, &order_payload()),
            )
            .await;
        let problem = reply.expect_problem(400, "badSignatureAlgorithm");
        // RFC 8555 §6.2: the problem lists the accepted algorithms.
        assert_eq!(
            problem["algorithms"],
            json!(["ES256", "ES384", "RS256", "EdDSA"]),
            "{alg}: {problem}"
        );
        assert!(
            problem["detail"].as_str().unwrap().contains(alg),
            "{alg}: {problem}"
        );
    }
}

#[tokio::test]
async fn algorithm_that_does_not_suit_the_key_is_bad_signature_algorithm() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await; // a P-256 key
    let header = json!({
        "alg": "RS256",
        "kid": account.url,
        "nonce": ca.nonce().await,
        "url": url("/acme/new-order"),
    });
    let reply = ca
        .post_jws(
            "/acme/new-order",
            &signed(&account.key, header, &order_payload()),
        )
        .await;
    reply.expect_problem(400, "badSignatureAlgorithm");
}

#[tokio::test]
async fn tampered_payload_is_malformed() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let nonce = ca.nonce().await;
    let mut jws = sign_jws(
        &account.key,
        KeyRef::Kid(&account.url),
        Some(&nonce),
        &url("/acme/new-order"),
        Some(&order_payload()),
    );
    let other = json!({"identifiers": [{"type": "dns", "value": "evil.example.com"}]});
    jws["payload"] = json!(base64url(other.to_string().as_bytes()));
    let reply = ca.post_jws("/acme/new-order", &jws).await;
    reply.expect_problem_detail(400, "malformed", "the JWS signature does not verify");

    // The nonce was not used up by the forgery.
    let jws = sign_jws(
        &account.key,
        KeyRef::Kid(&account.url),
        Some(&nonce),
        &url("/acme/new-order"),
        Some(&order_payload()),
    );
    ca.post_jws("/acme/new-order", &jws)
        .await
        .expect_json(StatusCode::CREATED);
}

#[tokio::test]
async fn signature_by_another_key_is_malformed() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let other = SigningKey::generate_p256();
    let reply = ca
        .post(
            &other,
            KeyRef::Kid(&account.url),
            "/acme/new-order",
            Some(&order_payload()),
        )
        .await;
    reply.expect_problem_detail(400, "malformed", "the JWS signature does not verify");
}

#[tokio::test]
async fn non_json_payload_is_malformed() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let header = json!({
        "alg": "ES256",
        "kid": account.url,
        "nonce": ca.nonce().await,
        "url": url("/acme/new-order"),
    });
    let jws = sign_jws_raw(&account.key, header, b"this is not json");
    let reply = ca.post_jws("/acme/new-order", &jws).await;
    let problem = reply.expect_problem(400, "malformed");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("the payload is not JSON: "),
        "{problem}"
    );
}

#[tokio::test]
async fn non_json_body_is_malformed() {
    let ca = TestCa::new().await;
    let reply = ca
        .post_bytes("/acme/new-account", JOSE, b"protected=abc".to_vec())
        .await;
    reply.expect_problem_detail(400, "malformed", "the request body is not a JSON object");
}

#[tokio::test]
async fn wrong_content_type_is_415_malformed() {
    let ca = TestCa::new().await;
    let key = SigningKey::generate_p256();
    let jws = sign_jws(
        &key,
        KeyRef::Jwk,
        Some(&ca.nonce().await),
        &url("/acme/new-account"),
        Some(&json!({})),
    );
    for content_type in ["application/json", "text/plain", "application/jose"] {
        let reply = ca
            .post_bytes(
                "/acme/new-account",
                content_type,
                jws.to_string().into_bytes(),
            )
            .await;
        reply.expect_problem_detail(
            415,
            "malformed",
            &format!("Content-Type must be application/jose+json, not {content_type:?}"),
        );
    }
    // No content type at all.
    let reply = ca
        .send(
            axum::http::Request::post("/acme/new-account")
                .body(axum::body::Body::from(jws.to_string()))
                .unwrap(),
        )
        .await;
    reply.expect_problem(415, "malformed");
    // A parameter after the media type is fine.
    let reply = ca
        .post_bytes(
            "/acme/new-account",
            "application/jose+json; charset=utf-8",
            jws.to_string().into_bytes(),
        )
        .await;
    reply.expect_json(StatusCode::CREATED);
}

#[tokio::test]
async fn content_type_is_matched_case_insensitively() {
    let ca = TestCa::new().await;
    let key = SigningKey::generate_p256();
    let jws = sign_jws(
        &key,
        KeyRef::Jwk,
        Some(&ca.nonce().await),
        &url("/acme/new-account"),
        Some(&json!({})),
    );
    // RFC 9110 §8.3.1: type and subtype are case-insensitive.
    let reply = ca
        .post_bytes(
            "/acme/new-account",
            "Application/JOSE+JSON",
            jws.to_string().into_bytes(),
        )
        .await;
    reply.expect_json(StatusCode::CREATED);
}

#[tokio::test]
async fn general_serialisation_is_malformed() {
    let ca = TestCa::new().await;
    let key = SigningKey::generate_p256();
    let flat = sign_jws(
        &key,
        KeyRef::Jwk,
        Some(&ca.nonce().await),
        &url("/acme/new-account"),
        Some(&json!({})),
    );
    let general = json!({
        "payload": flat["payload"],
        "signatures": [{"protected": flat["protected"], "signature": flat["signature"]}],
    });
    let reply = ca.post_jws("/acme/new-account", &general).await;
    reply.expect_problem_detail(
        400,
        "malformed",
        "the general JWS serialisation (\"signatures\") is not allowed; use the flattened one (RFC 8555 §6.2)",
    );
}

#[tokio::test]
async fn unprotected_header_is_malformed() {
    let ca = TestCa::new().await;
    let key = SigningKey::generate_p256();
    let mut jws = sign_jws(
        &key,
        KeyRef::Jwk,
        Some(&ca.nonce().await),
        &url("/acme/new-account"),
        Some(&json!({})),
    );
    jws["header"] = json!({"kid": "x"});
    let reply = ca.post_jws("/acme/new-account", &jws).await;
    reply.expect_problem_detail(
        400,
        "malformed",
        "the unprotected JWS \"header\" is not allowed (RFC 8555 §6.2)",
    );
}

#[tokio::test]
async fn new_account_signed_with_kid_is_malformed() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let reply = ca
        .account_post(&account, "/acme/new-account", Some(&json!({})))
        .await;
    reply.expect_problem_detail(
        400,
        "malformed",
        "newAccount must be signed with a jwk, not a kid",
    );
}

#[tokio::test]
async fn new_order_signed_with_jwk_is_malformed() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let reply = ca
        .post(
            &account.key,
            KeyRef::Jwk,
            "/acme/new-order",
            Some(&order_payload()),
        )
        .await;
    reply.expect_problem_detail(
        400,
        "malformed",
        "this request must be signed with the account's kid, not a jwk",
    );
}

#[tokio::test]
async fn post_as_get_with_a_payload_is_malformed() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let (order_url, _) = ca.new_order(&account, &[NAME]).await;
    let reply = ca
        .account_post(&account, &order_url, Some(&json!({})))
        .await;
    reply.expect_problem_detail(
        400,
        "malformed",
        "this resource takes POST-as-GET: the payload must be empty",
    );
}

#[tokio::test]
async fn new_order_as_post_as_get_is_malformed() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let reply = ca.post_as_get(&account, "/acme/new-order").await;
    reply.expect_problem_detail(
        400,
        "malformed",
        "this request needs a JSON payload, not POST-as-GET",
    );
}

// ---------------------------------------------------------------------------------------------
// Bad requests: finalize

#[tokio::test]
async fn csr_for_other_names_is_bad_csr_and_the_order_stays_ready() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let (order_url, order) = ca.ready_order(&account, &[NAME]).await;

    let cases: [&[&str]; 3] = [
        &["b.example.com"],
        &[NAME, "b.example.com"],
        &["www.a.example.com"],
    ];
    for names in cases {
        let reply = ca.finalize(&account, &order, &csr(names)).await;
        let problem = reply.expect_problem(400, "badCSR");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .starts_with("the CSR asks for ["),
            "{problem}"
        );
        assert_eq!(ca.fetch(&account, &order_url).await["status"], "ready");
    }

    // A corrected CSR still finalizes.
    let order = ca
        .finalize(&account, &order, &csr(&[NAME]))
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(order["status"], "valid");
}

#[tokio::test]
async fn csr_signed_with_the_account_key_is_bad_csr() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let (order_url, order) = ca.ready_order(&account, &[NAME]).await;
    let account_key = account.key.rcgen_key_pair().unwrap();
    let reply = ca
        .finalize(&account, &order, &csr_with(&account_key, &[NAME]))
        .await;
    reply.expect_problem_detail(
        400,
        "badCSR",
        "the CSR's public key is an account key; use a separate key for the certificate",
    );
    assert_eq!(ca.fetch(&account, &order_url).await["status"], "ready");
}

#[tokio::test]
async fn csr_with_another_accounts_key_is_bad_csr() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let other = ca.new_account().await;
    let (_, order) = ca.ready_order(&account, &[NAME]).await;
    let other_key = other.key.rcgen_key_pair().unwrap();
    let reply = ca
        .finalize(&account, &order, &csr_with(&other_key, &[NAME]))
        .await;
    reply.expect_problem(400, "badCSR");
}

#[tokio::test]
async fn finalize_of_a_pending_order_is_order_not_ready() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let (_, order) = ca.new_order(&account, &[NAME]).await;
    let reply = ca.finalize(&account, &order, &csr(&[NAME])).await;
    reply.expect_problem_detail(403, "orderNotReady", "the order is pending, not ready");
}

#[tokio::test]
async fn finalize_of_a_valid_order_is_order_not_ready() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let (_, order) = ca.ready_order(&account, &[NAME]).await;
    ca.finalize(&account, &order, &csr(&[NAME]))
        .await
        .expect_json(StatusCode::OK);
    let reply = ca.finalize(&account, &order, &csr(&[NAME])).await;
    reply.expect_problem_detail(403, "orderNotReady", "the order is valid, not ready");
}

#[tokio::test]
async fn csr_that_is_not_base64url_is_malformed() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let (_, order) = ca.ready_order(&account, &[NAME]).await;
    let reply = ca
        .account_post(
            &account,
            order["finalize"].as_str().unwrap(),
            Some(&json!({"csr": "not base64url!"})),
        )
        .await;
    reply.expect_problem_detail(400, "malformed", "csr is not base64url");
}

#[tokio::test]
async fn finalize_without_a_csr_is_malformed() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let (_, order) = ca.ready_order(&account, &[NAME]).await;
    for payload in [json!({}), json!({"csr": 5})] {
        let reply = ca
            .account_post(
                &account,
                order["finalize"].as_str().unwrap(),
                Some(&payload),
            )
            .await;
        reply.expect_problem(400, "malformed");
    }
}

#[tokio::test]
async fn garbage_csr_der_is_bad_csr() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let (order_url, order) = ca.ready_order(&account, &[NAME]).await;
    let mut truncated = csr(&[NAME]);
    truncated.truncate(truncated.len() / 2);
    let mut bad_signature = csr(&[NAME]);
    let last = bad_signature.len() - 1;
    bad_signature[last] ^= 0x01;
    for (name, der) in [
        ("garbage", b"definitely not DER".to_vec()),
        ("truncated", truncated),
        ("empty", Vec::new()),
    ] {
        let reply = ca.finalize(&account, &order, &der).await;
        let problem = reply.expect_problem(400, "badCSR");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .starts_with("the CSR is not valid DER"),
            "{name}: {problem}"
        );
    }
    let reply = ca.finalize(&account, &order, &bad_signature).await;
    reply.expect_problem_detail(400, "badCSR", "the CSR's signature does not verify");
    assert_eq!(ca.fetch(&account, &order_url).await["status"], "ready");
}

// ---------------------------------------------------------------------------------------------
// Bad requests: accounts and orders

#[tokio::test]
async fn tel_contact_is_unsupported_contact() {
    let ca = TestCa::new().await;
    let key = SigningKey::generate_p256();
    let reply = ca
        .post(
            &key,
            KeyRef::Jwk,
            "/acme/new-account",
            Some(&json!({"contact": ["tel:+15555550100"]})),
        )
        .await;
    reply.expect_problem_detail(
        400,
        "unsupportedContact",
        "contact \"tel:+15555550100\" is not supported: only mailto: URLs are",
    );
}

#[tokio::test]
async fn malformed_mailto_contact_is_invalid_contact() {
    let ca = TestCa::new().await;
    let key = SigningKey::generate_p256();
    for contact in [
        "mailto:",
        "mailto:no-at-sign",
        "mailto:a@b.com,c@d.com",
        "mailto:a@b.com?subject=x",
        "mailto:a b@example.com",
        "mailto:a@localhost",
    ] {
        let reply = ca
            .post(
                &key,
                KeyRef::Jwk,
                "/acme/new-account",
                Some(&json!({ "contact": [contact] })),
            )
            .await;
        let problem = reply.expect_problem(400, "invalidContact");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .starts_with(&format!("contact {contact:?} is invalid: ")),
            "{problem}"
        );
    }
}

#[tokio::test]
async fn new_order_without_identifiers_is_malformed() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let reply = ca.new_order_reply(&account, &[]).await;
    reply.expect_problem_detail(400, "malformed", "the order has no identifiers");
    for payload in [json!({}), json!({"identifiers": "a.example.com"})] {
        let reply = ca
            .account_post(&account, "/acme/new-order", Some(&payload))
            .await;
        reply.expect_problem(400, "malformed");
    }
}

#[tokio::test]
async fn email_identifier_is_unsupported_identifier() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let payload = json!({"identifiers": [{"type": "email", "value": "a@example.com"}]});
    let reply = ca
        .account_post(&account, "/acme/new-order", Some(&payload))
        .await;
    reply.expect_problem_detail(
        400,
        "unsupportedIdentifier",
        "identifier type \"email\" is not supported (dns and ip are)",
    );
}

#[tokio::test]
async fn invalid_dns_name_is_rejected_identifier() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    for name in [
        "bad_name.example.com",
        "",
        "a..example.com",
        "example.com.",
        "-a.example.com",
    ] {
        let reply = ca.new_order_reply(&account, &[name]).await;
        let problem = reply.expect_problem(400, "rejectedIdentifier");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("is not a valid DNS name"),
            "{name:?}: {problem}"
        );
    }
}

#[tokio::test]
async fn wildcard_below_the_first_label_is_rejected_identifier() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let reply = ca.new_order_reply(&account, &["a.*.example.com"]).await;
    reply.expect_problem_detail(
        400,
        "rejectedIdentifier",
        "\"a.*.example.com\" is not a valid DNS name: it has a character other than a-z, 0-9, '-' and '.'",
    );
}

#[tokio::test]
async fn several_refused_identifiers_are_subproblems() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let reply = ca
        .new_order_reply(&account, &["a.*.example.com", "bad_name.example.com", NAME])
        .await;
    let problem = reply.expect_problem_detail(
        400,
        "rejectedIdentifier",
        "2 identifiers were refused; see subproblems",
    );
    let subproblems = problem["subproblems"].as_array().unwrap();
    assert_eq!(subproblems.len(), 2);
    for sub in subproblems {
        assert_eq!(sub["type"], json!(support::urn("rejectedIdentifier")));
        assert_eq!(sub["status"], 400);
    }
}

#[tokio::test]
async fn refusals_of_different_types_are_compound() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let payload = json!({"identifiers": [
        {"type": "email", "value": "a@example.com"},
        {"type": "dns", "value": "bad_name.example.com"},
    ]});
    let reply = ca
        .account_post(&account, "/acme/new-order", Some(&payload))
        .await;
    // RFC 8555 §6.7.1: causes of different types are reported as `compound`.
    let problem = reply.expect_problem_detail(
        403,
        "compound",
        "2 identifiers were refused; see subproblems",
    );
    let types: Vec<&str> = problem["subproblems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            support::urn("unsupportedIdentifier").as_str(),
            support::urn("rejectedIdentifier").as_str()
        ]
    );
}

#[tokio::test]
async fn another_accounts_resources_are_unauthorized() {
    let ca = TestCa::new().await;
    let alice = ca.new_account().await;
    let bob = ca.new_account().await;
    let (order_url, order) = ca.ready_order(&alice, &[NAME]).await;
    let authz_url = order["authorizations"][0].as_str().unwrap().to_owned();
    let challenge_url = ca.fetch(&alice, &authz_url).await["challenges"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();

    ca.post_as_get(&bob, &order_url)
        .await
        .expect_problem_detail(403, "unauthorized", "this order belongs to another account");
    ca.post_as_get(&bob, &authz_url)
        .await
        .expect_problem_detail(
            403,
            "unauthorized",
            "this authorization belongs to another account",
        );
    ca.post_as_get(&bob, &challenge_url)
        .await
        .expect_problem_detail(
            403,
            "unauthorized",
            "this challenge belongs to another account",
        );
    ca.account_post(&bob, &challenge_url, Some(&json!({})))
        .await
        .expect_problem(403, "unauthorized");
    ca.post_as_get(&bob, &alice.url)
        .await
        .expect_problem_detail(
            403,
            "unauthorized",
            "the request is signed by another account",
        );
    ca.finalize(&bob, &order, &csr(&[NAME]))
        .await
        .expect_problem(403, "unauthorized");

    let done = ca
        .finalize(&alice, &order, &csr(&[NAME]))
        .await
        .expect_json(StatusCode::OK);
    ca.post_as_get(&bob, done["certificate"].as_str().unwrap())
        .await
        .expect_problem_detail(
            403,
            "unauthorized",
            "this certificate belongs to another account",
        );
}

#[tokio::test]
async fn unknown_resources_are_404() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let cases = [
        ("/acme/order/nope", "order does not exist"),
        ("/acme/order/nope/finalize", "order does not exist"),
        ("/acme/authz/nope", "authorization does not exist"),
        ("/acme/chall/nope", "challenge does not exist"),
        ("/acme/cert/nope", "certificate does not exist"),
    ];
    for (path, detail) in cases {
        let payload = path.ends_with("/finalize").then(|| json!({"csr": "AA"}));
        let reply = ca.account_post(&account, path, payload.as_ref()).await;
        reply.expect_problem_detail(404, "malformed", detail);
    }
}

// ---------------------------------------------------------------------------------------------
// Garbage never makes a 500

#[tokio::test]
async fn garbage_bodies_are_4xx_problems() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let header_of = |text: &str| base64url(text.as_bytes());
    let good_header = json!({
        "alg": "ES256",
        "kid": account.url,
        "nonce": "n",
        "url": url("/acme/new-order"),
    })
    .to_string();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty body", Vec::new()),
        ("empty object", b"{}".to_vec()),
        ("array", b"[]".to_vec()),
        ("string", b"\"x\"".to_vec()),
        ("number", b"42".to_vec()),
        ("null", b"null".to_vec()),
        ("truncated JSON", b"{\"protected\": ".to_vec()),
        ("binary", vec![0xff, 0xfe, 0x00, 0x80]),
        (
            "protected not base64",
            json!({"protected": "!!!", "payload": "", "signature": "AA"})
                .to_string()
                .into_bytes(),
        ),
        (
            "protected padded",
            json!({"protected": format!("{}==", header_of("{}")), "payload": "", "signature": "AA"})
                .to_string()
                .into_bytes(),
        ),
        (
            "protected not JSON",
            json!({"protected": header_of("not json"), "payload": "", "signature": "AA"})
                .to_string()
                .into_bytes(),
        ),
        (
            "protected a JSON array",
            json!({"protected": header_of("[1,2]"), "payload": "", "signature": "AA"})
                .to_string()
                .into_bytes(),
        ),
        (
            "protected without alg",
            json!({"protected": header_of(r#"{"kid":"x","url":"y"}"#), "payload": "", "signature": "AA"})
                .to_string()
                .into_bytes(),
        ),
        (
            "alg not a string",
            json!({"protected": header_of(r#"{"alg":1,"kid":"x","url":"y"}"#), "payload": "", "signature": "AA"})
                .to_string()
                .into_bytes(),
        ),
        (
            "jwk not an object",
            json!({"protected": header_of(r#"{"alg":"ES256","jwk":"k","url":"y"}"#), "payload": "", "signature": "AA"})
                .to_string()
                .into_bytes(),
        ),
        (
            "jwk of an unknown kty",
            json!({"protected": header_of(r#"{"alg":"ES256","jwk":{"kty":"oct","k":"AA"},"url":"y"}"#), "payload": "", "signature": "AA"})
                .to_string()
                .into_bytes(),
        ),
        (
            "crit",
            json!({"protected": header_of(r#"{"alg":"ES256","kid":"x","url":"y","crit":["b64"]}"#), "payload": "", "signature": "AA"})
                .to_string()
                .into_bytes(),
        ),
        (
            "members not strings",
            json!({"protected": 1, "payload": [], "signature": {}})
                .to_string()
                .into_bytes(),
        ),
        (
            "missing signature",
            json!({"protected": header_of(&good_header), "payload": ""})
                .to_string()
                .into_bytes(),
        ),
        (
            "signature not base64",
            json!({"protected": header_of(&good_header), "payload": "", "signature": "***"})
                .to_string()
                .into_bytes(),
        ),
        (
            "empty signature",
            json!({"protected": header_of(&good_header), "payload": "", "signature": ""})
                .to_string()
                .into_bytes(),
        ),
        (
            "unknown member",
            json!({"protected": header_of(&good_header), "payload": "", "signature": "AA", "extra": 1})
                .to_string()
                .into_bytes(),
        ),
        ("huge body", {
            let mut huge = b"{\"protected\":\"".to_vec();
            huge.extend(std::iter::repeat_n(b'A', 70 * 1024));
            huge.extend_from_slice(b"\"}");
            huge
        }),
    ];
    let paths = [
        "/acme/new-account",
        "/acme/new-order",
        path_of(&account.url),
        "/acme/order/x",
        "/acme/order/x/finalize",
        "/acme/authz/x",
        "/acme/chall/x",
        "/acme/cert/x",
    ];
    for path in paths {
        for (name, body) in &cases {
            let reply = ca.post_bytes(path, JOSE, body.clone()).await;
            assert!(
                reply.status.is_client_error(),
                "{path} {name}: {} {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            );
            assert_eq!(reply.header("content-type"), Some(PROBLEM), "{path} {name}");
            let problem = reply.json();
            assert_eq!(
                problem["status"],
                json!(reply.status.as_u16()),
                "{path} {name}"
            );
            assert!(reply.header("replay-nonce").is_some(), "{path} {name}");
        }
    }
    // The huge one is refused for its size.
    let reply = ca
        .post_bytes("/acme/new-order", JOSE, cases.last().unwrap().1.clone())
        .await;
    reply.expect_problem_detail(400, "malformed", "the body is larger than 65536 bytes");
}

#[tokio::test]
async fn garbage_payloads_from_a_valid_account_are_4xx_problems() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let (order_url, order) = ca.new_order(&account, &[NAME]).await;
    let authz_url = order["authorizations"][0].as_str().unwrap().to_owned();
    let finalize_url = order["finalize"].as_str().unwrap().to_owned();
    let payloads = [
        json!(null),
        json!([]),
        json!("x"),
        json!(1),
        json!({"identifiers": [{"type": 1, "value": NAME}]}),
        json!({"identifiers": [{"type": "dns"}]}),
        json!({"identifiers": [{"type": "ip", "value": "not-an-ip"}]}),
        json!({"identifiers": [{"type": "dns", "value": NAME}], "notBefore": "2030-01-01T00:00:00Z"}),
        json!({"contact": "mailto:a@example.com"}),
        json!({"csr": null}),
    ];
    let targets = [
        "/acme/new-order".to_owned(),
        "/acme/new-account".to_owned(),
        account.url.clone(),
        order_url,
        finalize_url,
        authz_url,
    ];
    for target in &targets {
        for payload in &payloads {
            // RFC 8555 §7.3.2: an account update ignores fields it does not know (certbot
            // sends the whole account object back), so only a bad `contact` or a non-object
            // is an error there.
            let ignored_by_account_update = payload.is_object() && payload.get("contact").is_none();
            if *target == account.url && ignored_by_account_update {
                continue;
            }
            let reply = ca.account_post(&account, target, Some(payload)).await;
            assert!(
                reply.status.is_client_error(),
                "{target} {payload}: {} {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            );
            assert_eq!(reply.header("content-type"), Some(PROBLEM));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Validation failures

/// A new order for `name` whose challenge is answered; returns (order URL, authz URL,
/// finished challenge).
async fn failed_validation(
    ca: &TestCa,
    name: &str,
    serve: impl FnOnce(&TestCa, &support::Account, &str),
) -> (support::Account, String, String, Value) {
    let account = ca.new_account().await;
    let (order_url, order) = ca.new_order(&account, &[name]).await;
    let (authz_url, challenge) = ca.first_challenge(&account, &order).await;
    serve(ca, &account, challenge["token"].as_str().unwrap());
    let challenge_url = challenge["url"].as_str().unwrap();
    ca.respond(&account, challenge_url).await;
    let done = ca.poll_challenge(&account, challenge_url).await;
    (account, order_url, authz_url, done)
}

#[tokio::test]
async fn wrong_key_authorization_is_incorrect_response() {
    let ca = TestCa::new().await;
    let (account, order_url, authz_url, challenge) =
        failed_validation(&ca, NAME, |ca, _, token| {
            ca.serve(token, StatusCode::OK, &format!("{token}.wrong-thumbprint"));
        })
        .await;
    assert_eq!(challenge["status"], "invalid", "{challenge}");
    let error = &challenge["error"];
    assert_eq!(error["type"], json!(support::urn("incorrectResponse")));
    assert_eq!(error["status"], 403);
    assert_eq!(error["identifier"], json!({"type": "dns", "value": NAME}));
    assert!(challenge.get("validated").is_none());

    let authz = ca.fetch(&account, &authz_url).await;
    assert_eq!(authz["status"], "invalid");
    assert_eq!(authz["challenges"][0]["error"], *error);
    let order = ca.fetch(&account, &order_url).await;
    assert_eq!(order["status"], "invalid");

    // Answering again changes nothing, and an invalid order cannot be finalized.
    let again = ca
        .respond(&account, challenge["url"].as_str().unwrap())
        .await;
    assert_eq!(again["status"], "invalid");
    ca.finalize(&account, &order, &csr(&[NAME]))
        .await
        .expect_problem_detail(403, "orderNotReady", "the order is invalid, not ready");
}

#[tokio::test]
async fn key_authorization_with_trailing_whitespace_is_accepted() {
    let ca = TestCa::new().await;
    let (_, _, _, challenge) = failed_validation(&ca, NAME, |ca, account, token| {
        let body = mayfly::jose::key_authorization(token, &account.key.jwk());
        ca.serve(token, StatusCode::OK, &format!("{body}\r\n  \n"));
    })
    .await;
    assert_eq!(challenge["status"], "valid", "{challenge}");
}

#[tokio::test]
async fn not_found_at_the_target_is_unauthorized() {
    let ca = TestCa::new().await;
    // The target knows no token: it answers 404.
    let (account, order_url, authz_url, challenge) =
        failed_validation(&ca, NAME, |_, _, _| {}).await;
    assert_eq!(challenge["status"], "invalid", "{challenge}");
    let error = &challenge["error"];
    assert_eq!(error["type"], json!(support::urn("unauthorized")));
    assert_eq!(error["status"], 403);
    assert!(error["detail"].as_str().unwrap().contains("404"), "{error}");
    assert_eq!(ca.fetch(&account, &authz_url).await["status"], "invalid");
    assert_eq!(ca.fetch(&account, &order_url).await["status"], "invalid");
}

#[tokio::test]
async fn server_error_at_the_target_is_unauthorized() {
    let ca = TestCa::new().await;
    let (_, _, _, challenge) = failed_validation(&ca, NAME, |ca, account, token| {
        let body = mayfly::jose::key_authorization(token, &account.key.jwk());
        ca.serve(token, StatusCode::INTERNAL_SERVER_ERROR, &body);
    })
    .await;
    assert_eq!(challenge["status"], "invalid", "{challenge}");
    assert_eq!(
        challenge["error"]["type"],
        json!(support::urn("unauthorized"))
    );
}

#[tokio::test]
async fn unresolvable_name_is_a_dns_error() {
    let ca = TestCa::new().await;
    let (account, order_url, authz_url, challenge) =
        failed_validation(&ca, "nx.example.com", |_, _, _| {}).await;
    assert_eq!(challenge["status"], "invalid", "{challenge}");
    let error = &challenge["error"];
    assert_eq!(error["type"], json!(support::urn("dns")), "{error}");
    assert_eq!(error["status"], 400);
    assert_eq!(
        error["detail"],
        json!("DNS problem: NXDOMAIN looking up nx.example.com")
    );
    assert_eq!(
        error["identifier"],
        json!({"type": "dns", "value": "nx.example.com"})
    );
    assert_eq!(ca.fetch(&account, &authz_url).await["status"], "invalid");
    assert_eq!(ca.fetch(&account, &order_url).await["status"], "invalid");
}

// ---------------------------------------------------------------------------------------------
// Time: FakeClock

#[tokio::test]
async fn pending_order_expires_and_its_authorization_too() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let (order_url, order) = ca.new_order(&account, &[NAME]).await;
    let (authz_url, challenge) = ca.first_challenge(&account, &order).await;
    let created = ca.now();
    let expires = (created + Duration::hours(8))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(order["expires"], json!(expires));

    // One second before the end both are still pending.
    ca.clock.advance(Duration::hours(8) - Duration::seconds(1));
    assert_eq!(ca.fetch(&account, &order_url).await["status"], "pending");
    assert_eq!(ca.fetch(&account, &authz_url).await["status"], "pending");

    ca.clock.advance(Duration::seconds(1));
    assert_eq!(ca.fetch(&account, &order_url).await["status"], "invalid");
    let authz = ca.fetch(&account, &authz_url).await;
    assert_eq!(authz["status"], "expired");
    assert_eq!(authz["expires"], json!(expires));

    // An expired authorization's challenge can no longer be answered.
    let token = challenge["token"].as_str().unwrap();
    ca.serve_key_authorization(&account, token);
    ca.account_post(
        &account,
        challenge["url"].as_str().unwrap(),
        Some(&json!({})),
    )
    .await
    .expect_problem_detail(
        400,
        "malformed",
        "the authorization is expired; its challenges can no longer be answered",
    );
}

#[tokio::test]
async fn ready_order_expires_before_finalize() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let (order_url, order) = ca.ready_order(&account, &[NAME]).await;
    ca.clock.advance(Duration::hours(8));
    assert_eq!(ca.fetch(&account, &order_url).await["status"], "invalid");
    ca.finalize(&account, &order, &csr(&[NAME]))
        .await
        .expect_problem_detail(403, "orderNotReady", "the order is invalid, not ready");
}

#[tokio::test]
async fn valid_order_stays_valid_after_it_expires() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let (order_url, order) = ca.ready_order(&account, &[NAME]).await;
    ca.finalize(&account, &order, &csr(&[NAME]))
        .await
        .expect_json(StatusCode::OK);
    ca.clock.advance(Duration::hours(9));
    let order = ca.fetch(&account, &order_url).await;
    assert_eq!(order["status"], "valid");
    let reply = ca
        .post_as_get(&account, order["certificate"].as_str().unwrap())
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn nonce_older_than_its_lifetime_is_bad_nonce() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let nonce = ca.nonce().await;
    let jws = sign_jws(
        &account.key,
        KeyRef::Kid(&account.url),
        Some(&nonce),
        &url("/acme/new-order"),
        Some(&order_payload()),
    );
    ca.clock.advance(Duration::hours(1));
    let reply = ca.post_jws("/acme/new-order", &jws).await;
    reply.expect_problem_detail(400, "badNonce", "the nonce has expired");
}

#[tokio::test]
async fn nonce_just_inside_its_lifetime_is_accepted_once() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let nonce = ca.nonce().await;
    let jws = sign_jws(
        &account.key,
        KeyRef::Kid(&account.url),
        Some(&nonce),
        &url("/acme/new-order"),
        Some(&order_payload()),
    );
    ca.clock.advance(Duration::hours(1) - Duration::seconds(1));
    ca.post_jws("/acme/new-order", &jws)
        .await
        .expect_json(StatusCode::CREATED);
    // Used, then expired: still refused.
    ca.post_jws("/acme/new-order", &jws)
        .await
        .expect_problem_detail(400, "badNonce", "the nonce was already used");
    ca.clock.advance(Duration::seconds(1));
    ca.post_jws("/acme/new-order", &jws)
        .await
        .expect_problem(400, "badNonce");
}

/// `testing.nonce_reject_percent = 100` rejects every fresh nonce, but never the one sent with
/// the `badNonce`: a client that retries once always gets through.
#[tokio::test]
async fn nonce_rejection_spares_the_retry_nonce() {
    let mut config = mayfly::config::Config::default();
    config.testing.nonce_reject_percent = 100;
    let ca = TestCa::with_config(config).await;
    let key = SigningKey::generate_p256();
    let payload = json!({"termsOfServiceAgreed": true});
    let first = ca
        .post(&key, KeyRef::Jwk, "/acme/new-account", Some(&payload))
        .await;
    first.expect_problem(400, "badNonce");
    let retry_nonce = first.header("replay-nonce").expect("a nonce").to_owned();
    let jws = sign_jws(
        &key,
        KeyRef::Jwk,
        Some(&retry_nonce),
        &url("/acme/new-account"),
        Some(&payload),
    );
    ca.post_jws("/acme/new-account", &jws)
        .await
        .expect_json(StatusCode::CREATED);
}
