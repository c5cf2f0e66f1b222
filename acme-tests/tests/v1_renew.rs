//! `POST /v1/renew` over a real TLS listener (issue 6): the HTTPS listener asks every client
//! for a certificate and requires none, so ACME clients that present none keep working
//! (instant-acme obtains the first certificate through that very listener), and a client that
//! presents its Mayfly certificate as its TLS client certificate gets it issued again.

use std::path::Path;

use acme_tests::Environment;
use acme_tests::clients::instant;
use serde_json::{Value, json};
use time::Duration;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;

const NAME: &str = "renew.v1.mayfly.test";

/// An HTTPS client trusting only the test root, presenting `identity` (key and chain, PEM) as
/// its client certificate when given.
fn client(env: &Environment, identity: Option<&[u8]>) -> reqwest::Client {
    acme_tests::install_crypto_provider();
    let root = std::fs::read(&env.target().tls_root).expect("the root");
    let roots = reqwest::Certificate::from_pem_bundle(&root).expect("a PEM root");
    let mut builder = reqwest::Client::builder()
        .tls_certs_only(roots)
        .no_proxy()
        .timeout(std::time::Duration::from_secs(10));
    if let Some(pem) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(pem).expect("a PEM identity"));
    }
    builder.build().expect("an HTTPS client")
}

/// `POST /v1/renew` with `{}`; the status and the JSON body.
async fn renew(env: &Environment, client: &reqwest::Client) -> (u16, Value) {
    let base = env
        .target()
        .directory_url
        .strip_suffix("/directory")
        .expect("a directory URL");
    let response = client
        .post(format!("{base}/v1/renew"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    let body = response.json().await.expect("a JSON body");
    (status, body)
}

/// A certificate for `NAME` from instant-acme; returns the identity PEM (key, then chain) and
/// the leaf's DER.
async fn acme_certificate(env: &Environment, work: &Path) -> (Vec<u8>, Vec<u8>) {
    let issued = instant::issue(env.target(), NAME, work)
        .await
        .expect("instant-acme obtains a certificate through the listener");
    let chain = std::fs::read(&issued.fullchain).expect("the chain");
    let mut identity = std::fs::read(work.join("privkey.pem")).expect("the key");
    identity.extend_from_slice(&chain);
    (identity, first_der(&chain))
}

fn first_der(pem: &[u8]) -> Vec<u8> {
    Pem::iter_from_buffer(pem)
        .next()
        .expect("a PEM block")
        .expect("valid PEM")
        .contents
}

fn dns_names(der: &[u8]) -> Vec<String> {
    let (_, cert) = X509Certificate::from_der(der).expect("a certificate");
    let san = cert
        .subject_alternative_name()
        .expect("a valid SAN")
        .expect("a SAN");
    san.value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(dns) => (*dns).to_owned(),
            other => panic!("unexpected SAN {other}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_renews_itself_over_mutual_tls() {
    let env = Environment::mayfly().await.expect("mayfly starts");
    let work = tempfile::tempdir().expect("temp dir");
    let (identity, old_der) = acme_certificate(&env, work.path()).await;

    let (status, body) = renew(&env, &client(&env, Some(&identity))).await;
    assert_eq!(status, 201, "{body}");
    let new_der = first_der(
        body["certificate"]
            .as_str()
            .expect("a certificate")
            .as_bytes(),
    );
    assert_ne!(new_der, old_der);
    assert_eq!(dns_names(&new_der), [NAME]);
    let (_, new) = X509Certificate::from_der(&new_der).expect("a certificate");
    let (_, old) = X509Certificate::from_der(&old_der).expect("a certificate");
    assert_ne!(new.raw_serial(), old.raw_serial());
    assert_eq!(
        new.public_key().raw,
        old.public_key().raw,
        "the key is kept"
    );
    // The default profile (hours) under the default claims: a day, backdated a minute.
    let lifetime = new.validity().not_after.to_datetime() - new.validity().not_before.to_datetime();
    assert_eq!(lifetime, Duration::hours(24) + Duration::minutes(1));
    assert_eq!(
        body["fullchain"]
            .as_str()
            .map(|c| c.matches("BEGIN CERTIFICATE").count()),
        Some(2)
    );

    // Without a client certificate the same listener serves, and refuses the renewal.
    let (status, body) = renew(&env, &client(&env, None)).await;
    assert_eq!(
        (status, &body["type"]),
        (401, &json!("certificateRequired")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn renewal_is_refused_when_the_claims_disable_it() {
    let env = Environment::mayfly_with(&[("MAYFLY__ACME__CLAIMS__DISABLE_RENEWAL", "true")])
        .await
        .expect("mayfly starts");
    let work = tempfile::tempdir().expect("temp dir");
    let (identity, _) = acme_certificate(&env, work.path()).await;
    let (status, body) = renew(&env, &client(&env, Some(&identity))).await;
    assert_eq!(
        (status, &body["type"]),
        (403, &json!("renewalDisabled")),
        "{body}"
    );
}
