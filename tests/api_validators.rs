//! The validator chain and the fixups through the ACME API (issue 5): refusals at newOrder and
//! at finalize name the rule, `source_cidrs` reads the peer address and trusts
//! `X-Forwarded-For` only from configured proxies, fixups change the issued certificate, and
//! the issued template carries every extension it must.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use mayfly::config::Config;
use mayfly::jose::{KeyRef, sign_jws};
use mayfly::policy::fixups::FixupList;
use mayfly::policy::validators::ValidatorList;
use serde_json::{Value, json};
use support::*;
use tower::ServiceExt;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

fn config(validators: Value, fixups: Value) -> Config {
    let mut config = Config::default();
    let list = |v: Value| v.as_array().cloned().unwrap_or_default();
    config.acme.validators = ValidatorList::from_values(list(validators)).unwrap();
    config.acme.fixups = FixupList::from_values(list(fixups)).unwrap();
    config
}

/// newOrder for `names`, sent from `peer` (as the listener's ConnectInfo) with these
/// `X-Forwarded-For` lines.
async fn order_from(
    ca: &TestCa,
    account: &Account,
    names: &[&str],
    peer: Option<&str>,
    forwarded_for: &[&str],
) -> Reply {
    let path = "/acme/new-order";
    let identifiers: Vec<Value> = names
        .iter()
        .map(|n| json!({"type": "dns", "value": n}))
        .collect();
    let nonce = ca.nonce().await;
    let jws = sign_jws(
        &account.key,
        KeyRef::Kid(&account.url),
        Some(&nonce),
        &url(path),
        Some(&json!({ "identifiers": identifiers })),
    );
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, JOSE);
    for value in forwarded_for {
        request = request.header("x-forwarded-for", *value);
    }
    let mut request = request.body(Body::from(jws.to_string())).unwrap();
    if let Some(peer) = peer {
        let addr = SocketAddr::new(peer.parse().unwrap(), 50000);
        request.extensions_mut().insert(ConnectInfo(addr));
    }
    ca.send(request).await
}

/// A CSR for `names` whose parameters `tweak` adjusts (key usages, CA flag, subject).
fn csr_tweaked(names: &[&str], tweak: impl FnOnce(&mut rcgen::CertificateParams)) -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = rcgen::CertificateParams::new(names).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    tweak(&mut params);
    params.serialize_request(&key).unwrap().der().to_vec()
}

/// Finalizes a ready order with `csr`; asserts success and returns the leaf and chain (DER).
async fn issue(ca: &TestCa, account: &Account, names: &[&str], csr: &[u8]) -> Vec<Vec<u8>> {
    let (_, order) = ca.ready_order(account, names).await;
    let order = ca
        .finalize(account, &order, csr)
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(order["status"], "valid", "{order}");
    let reply = ca
        .post_as_get(account, order["certificate"].as_str().unwrap())
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    pem_certificates(&reply.body)
}

fn key_usage(leaf: &X509Certificate<'_>) -> String {
    leaf.key_usage().unwrap().unwrap().value.to_string()
}

fn subject(leaf: &X509Certificate<'_>) -> String {
    leaf.subject().to_string()
}

#[tokio::test]
async fn blacklist_names_refuses_the_order_with_one_subproblem_per_name() {
    let ca = TestCa::with_config(config(
        json!([{"name": "blacklist_names", "domains": ["internal.example.com"]}]),
        json!([]),
    ))
    .await;
    let account = ca.new_account().await;
    let reply = ca
        .new_order_reply(
            &account,
            &[NAME, "internal.example.com", "db.internal.example.com"],
        )
        .await;
    let problem = reply.expect_problem(400, "rejectedIdentifier");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("blacklist_names"), "{detail}");
    let subproblems = problem["subproblems"].as_array().unwrap();
    assert_eq!(subproblems.len(), 2, "{problem}");
    for (sub, name) in subproblems
        .iter()
        .zip(["internal.example.com", "db.internal.example.com"])
    {
        assert_eq!(sub["type"], urn("rejectedIdentifier"), "{sub}");
        assert_eq!(sub["identifier"], json!({"type": "dns", "value": name}));
        let detail = sub["detail"].as_str().unwrap();
        assert!(detail.contains("blacklist_names"), "{detail}");
        assert!(detail.contains(name), "{detail}");
    }
    // A name outside the list passes.
    ca.new_order(&account, &[NAME]).await;
}

#[tokio::test]
async fn key_usage_refuses_a_csr_asking_for_more() {
    let ca = TestCa::with_config(config(
        json!([{"name": "key_usage", "allowed_usage": ["Digital Signature"]}]),
        json!([]),
    ))
    .await;
    let account = ca.new_account().await;
    let (_, order) = ca.ready_order(&account, &[NAME]).await;
    let csr = csr_tweaked(&[NAME], |p| {
        p.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::DataEncipherment,
        ];
    });
    let problem = ca
        .finalize(&account, &order, &csr)
        .await
        .expect_problem(400, "badCSR");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.starts_with("rule key_usage refused"), "{detail}");
    assert!(detail.contains("dataEncipherment"), "{detail}");
    // The order stays ready for a corrected CSR, and the allowed usage is signed.
    let csr = csr_tweaked(&[NAME], |p| {
        p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    });
    let order = ca
        .finalize(&account, &order, &csr)
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(order["status"], "valid", "{order}");
}

#[tokio::test]
async fn ca_status_refuses_a_csr_asking_to_be_a_ca() {
    let ca = TestCa::with_config(config(json!([{"name": "ca_status"}]), json!([]))).await;
    let account = ca.new_account().await;
    let (_, order) = ca.ready_order(&account, &[NAME]).await;
    let csr = csr_tweaked(&[NAME], |p| {
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    });
    let problem = ca
        .finalize(&account, &order, &csr)
        .await
        .expect_problem(400, "badCSR");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.starts_with("rule ca_status refused"), "{detail}");
}

#[tokio::test]
async fn source_cidrs_reads_the_peer_and_trusts_forwarded_for_only_from_proxies() {
    let ca = TestCa::with_config(config(
        json!([{
            "name": "source_cidrs",
            "cidrs": ["192.0.2.0/24"],
            "trusted_proxies": ["10.0.0.0/8"],
        }]),
        json!([]),
    ))
    .await;
    let account = ca.new_account().await;
    // (case, TCP peer, X-Forwarded-For lines, the refused source if refused)
    type Case<'a> = (&'a str, Option<&'a str>, &'a [&'a str], Option<&'a str>);
    let cases: [Case<'_>; 7] = [
        ("a client inside", Some("192.0.2.7"), &[], None),
        (
            "a client outside",
            Some("203.0.113.9"),
            &[],
            Some("203.0.113.9"),
        ),
        (
            "an untrusted peer's header is ignored",
            Some("203.0.113.9"),
            &["192.0.2.7"],
            Some("203.0.113.9"),
        ),
        (
            "behind a trusted proxy",
            Some("10.0.0.2"),
            &["192.0.2.7"],
            None,
        ),
        (
            "a spoofed entry left of the client",
            Some("10.0.0.2"),
            &["192.0.2.7, 203.0.113.9"],
            Some("203.0.113.9"),
        ),
        (
            "a trusted proxy, a client outside",
            Some("10.0.0.2"),
            &["203.0.113.9"],
            Some("203.0.113.9"),
        ),
        (
            "no connect info: unknown source",
            None,
            &["192.0.2.7"],
            Some("unknown source"),
        ),
    ];
    for (name, peer, forwarded_for, refused) in cases {
        let reply = order_from(&ca, &account, &[NAME], peer, forwarded_for).await;
        match refused {
            None => assert_eq!(reply.status, StatusCode::CREATED, "{name}: {reply:?}"),
            Some(source) => {
                let problem = reply.expect_problem(403, "unauthorized");
                let detail = problem["detail"].as_str().unwrap();
                assert!(
                    detail.starts_with("rule source_cidrs refused"),
                    "{name}: {detail}"
                );
                assert!(detail.contains(source), "{name}: {detail}");
            }
        }
    }
}

#[tokio::test]
async fn fixups_change_the_issued_certificate() {
    // Without fixups, a CSR's requested keyUsage is honoured and the profile gives the CN.
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let asks_for_more = |p: &mut rcgen::CertificateParams| {
        p.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyAgreement,
        ];
    };
    let chain = issue(&ca, &account, &[NAME], &csr_tweaked(&[NAME], asks_for_more)).await;
    let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
    assert_eq!(key_usage(&leaf), "Digital Signature, Key Agreement");
    assert_eq!(subject(&leaf), format!("CN={NAME}"));

    // set_key_usage: the profile decides; drop_common_name: no subject.
    let ca = TestCa::with_config(config(
        json!([]),
        json!([{"name": "set_key_usage"}, {"name": "drop_common_name"}]),
    ))
    .await;
    let account = ca.new_account().await;
    let chain = issue(&ca, &account, &[NAME], &csr_tweaked(&[NAME], asks_for_more)).await;
    let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
    assert_eq!(key_usage(&leaf), "Digital Signature");
    assert_eq!(subject(&leaf), "");

    // set_key_usage with options overrides the profile too.
    let ca = TestCa::with_config(config(
        json!([]),
        json!([{
            "name": "set_key_usage",
            "key_usage": ["digitalSignature", "keyEncipherment"],
            "extended_key_usage": ["clientAuth"],
        }]),
    ))
    .await;
    let account = ca.new_account().await;
    let chain = issue(&ca, &account, &[NAME], &csr(&[NAME])).await;
    let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
    assert_eq!(key_usage(&leaf), "Digital Signature, Key Encipherment");
    let eku = leaf.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
}

#[tokio::test]
async fn force_common_name_promotes_the_first_name_under_a_profile_without_one() {
    let ca = TestCa::with_config(config(json!([]), json!([{"name": "force_common_name"}]))).await;
    let account = ca.new_account().await;
    // The built-in shortlived profile has no CN.
    let reply = ca
        .account_post(
            &account,
            "/acme/new-order",
            Some(&json!({
                "identifiers": [{"type": "dns", "value": NAME}],
                "profile": "shortlived",
            })),
        )
        .await;
    let order = reply.expect_json(StatusCode::CREATED);
    let order_url = reply.location();
    let authz = ca
        .fetch(&account, order["authorizations"][0].as_str().unwrap())
        .await;
    let challenge = &authz["challenges"][0];
    ca.serve_key_authorization(&account, challenge["token"].as_str().unwrap());
    let challenge_url = challenge["url"].as_str().unwrap();
    ca.respond(&account, challenge_url).await;
    assert_eq!(
        ca.poll_challenge(&account, challenge_url).await["status"],
        "valid"
    );
    let order = ca.fetch(&account, &order_url).await;
    let order = ca
        .finalize(&account, &order, &csr(&[NAME]))
        .await
        .expect_json(StatusCode::OK);
    let reply = ca
        .post_as_get(&account, order["certificate"].as_str().unwrap())
        .await;
    let chain = pem_certificates(&reply.body);
    let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
    assert_eq!(subject(&leaf), format!("CN={NAME}"));
}

#[tokio::test]
async fn a_leaf_never_gets_ca_usages() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let (_, order) = ca.ready_order(&account, &[NAME]).await;
    let csr = csr_tweaked(&[NAME], |p| {
        p.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    });
    let problem = ca
        .finalize(&account, &order, &csr)
        .await
        .expect_problem(400, "badCSR");
    assert!(
        problem["detail"].as_str().unwrap().contains("keyCertSign"),
        "{problem}"
    );
}

/// Every certificate: basicConstraints CA:false critical; KU and EKU from the profile; SKI;
/// AKI = the intermediate's SKI; the CRL distribution point; AIA caIssuers serving the
/// intermediate; the SANs exactly as authorized.
#[tokio::test]
async fn the_issued_template_field_by_field() {
    let ca = TestCa::new().await;
    let account = ca.new_account().await;
    let names = [NAME, "b.example.com"];
    let chain = issue(&ca, &account, &names, &csr(&["b.example.com", NAME])).await;
    assert_eq!(chain.len(), 2);
    let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
    let (_, intermediate) = X509Certificate::from_der(&chain[1]).unwrap();
    assert_eq!(chain[1], ca.issuer.intermediate_der());

    let constraints = leaf.basic_constraints().unwrap().unwrap();
    assert!(constraints.critical);
    assert!(!constraints.value.ca);
    assert_eq!(constraints.value.path_len_constraint, None);

    // The default profile (hours): digitalSignature, serverAuth.
    let usage = leaf.key_usage().unwrap().unwrap();
    assert!(usage.critical);
    assert_eq!(usage.value.to_string(), "Digital Signature");
    let eku = leaf.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth && eku.other.is_empty());

    let ski = |cert: &X509Certificate<'_>| {
        cert.extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
                _ => None,
            })
            .expect("an SKI")
    };
    let leaf_ski = ski(&leaf);
    assert!(!leaf_ski.is_empty());
    assert_ne!(leaf_ski, ski(&intermediate));
    let aki = leaf
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => a.key_identifier.as_ref(),
            _ => None,
        })
        .expect("an AKI");
    assert_eq!(aki.0, ski(&intermediate).as_slice());

    let crl_urls: Vec<String> = leaf
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
        .map(|name| match name {
            GeneralName::URI(uri) => (*uri).to_owned(),
            other => panic!("unexpected CRL DP {other:?}"),
        })
        .collect();
    let crl_name = ca.issuer.crl_name();
    assert_eq!(
        crl_urls,
        vec![format!("http://127.0.0.1:14080/crl/{crl_name}.crl")]
    );

    let aia = leaf
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(aia) => Some((e.critical, aia)),
            _ => None,
        })
        .expect("an authorityInfoAccess");
    assert!(!aia.0, "AIA is not critical");
    let ca_issuers: Vec<String> = aia
        .1
        .accessdescs
        .iter()
        .map(|d| {
            assert_eq!(d.access_method.to_id_string(), "1.3.6.1.5.5.7.48.2");
            match &d.access_location {
                GeneralName::URI(uri) => (*uri).to_owned(),
                other => panic!("unexpected access location {other:?}"),
            }
        })
        .collect();
    let expected = format!("http://127.0.0.1:14080/ca/{crl_name}.crt");
    assert_eq!(ca_issuers, vec![expected.clone()]);
    // The URL serves the intermediate, DER.
    let path = expected.strip_prefix("http://127.0.0.1:14080").unwrap();
    let response = ca
        .crl_router
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/pkix-cert"
    );
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(body.as_ref(), ca.issuer.intermediate_der());
    let missing = ca
        .crl_router
        .clone()
        .oneshot(Request::get("/ca/other.crt").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // The SANs exactly as authorized, in the order's order; the CN the first of them.
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
    assert_eq!(sans, names);
    assert_eq!(subject(&leaf), format!("CN={NAME}"));
    assert!(
        leaf.raw_serial().first().is_some_and(|b| b & 0x80 == 0),
        "positive serial"
    );
    assert!(leaf.raw_serial().len() >= 9, "at least 64 bits of entropy");
}
