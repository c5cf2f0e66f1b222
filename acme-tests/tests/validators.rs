//! The validator chain with real clients (issue 5): certbot is refused by `blacklist_names` and
//! shows the validator's name, and a certificate issued through instant-acme under a chain
//! carries the issued template field by field, with an authorityInfoAccess caIssuers URL that
//! serves the intermediate.
//!
//! The chain is configured through the environment, as TOML inline values
//! (`MAYFLY__ACME__VALIDATORS='[{name = "…", …}]'`), which figment reads as arrays of tables.

use acme_tests::Environment;
use acme_tests::clients::{certbot, instant};
use acme_tests::ports::free_tcp_port;
use acme_tests::verify::verify_chain;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::pem::Pem;
use x509_parser::prelude::{FromDer, X509Certificate};

/// A chain for the test zone: names under `.mayfly.test` only, and never under
/// `blocked.mayfly.test`. (figment's environment values take no trailing comma.)
const VALIDATORS: &str = r#"[
    { name = "alternative_names", allowed_domains = [".mayfly.test"] },
    { name = "blacklist_names", domains = ["blocked.mayfly.test"] },
    { name = "ca_status" }
]"#;
const FIXUPS: &str = r#"[{ name = "set_key_usage" }]"#;

#[tokio::test(flavor = "multi_thread")]
async fn certbot_is_refused_by_blacklist_names_and_shows_the_validator() {
    let env = Environment::mayfly_with(&[
        ("MAYFLY__ACME__VALIDATORS", VALIDATORS),
        ("MAYFLY__ACME__FIXUPS", FIXUPS),
    ])
    .await
    .expect("mayfly starts");
    let work = tempfile::tempdir().expect("a work directory");
    let error = certbot::issue(env.target(), "www.blocked.mayfly.test", work.path())
        .await
        .expect_err("certbot is refused");
    // The error holds certbot's output and the tail of its log: Debian's certbot 2.1 on
    // Python 3.11 prints the problem's detail to its log, and then fails to print any ACME
    // error itself ("AttributeError: can't set attribute").
    let text = format!("{error:#}");
    assert!(text.contains("rejectedIdentifier"), "{text}");
    assert!(
        text.contains("rule blacklist_names refused dns:www.blocked.mayfly.test"),
        "certbot's output does not name the validator: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn instant_acme_certificate_carries_the_issued_template() {
    let crl_listen = format!("127.0.0.1:{}", free_tcp_port().expect("a free port"));
    let env = Environment::mayfly_with(&[
        ("MAYFLY__ACME__VALIDATORS", VALIDATORS),
        ("MAYFLY__ACME__FIXUPS", FIXUPS),
        ("MAYFLY__CRL__LISTEN", &crl_listen),
    ])
    .await
    .expect("mayfly starts");
    let work = tempfile::tempdir().expect("a work directory");
    let name = "template.mayfly.test";
    let issued = instant::issue(env.target(), name, work.path())
        .await
        .expect("instant-acme gets a certificate through the chain");
    verify_chain(&issued.fullchain, &env.target().issuer_root, &[name]).expect("it verifies");

    let pem = std::fs::read(&issued.fullchain).expect("the chain");
    let ders: Vec<Vec<u8>> = Pem::iter_from_buffer(&pem)
        .map(|p| p.expect("PEM").contents)
        .collect();
    assert_eq!(ders.len(), 2);
    let (_, leaf) = X509Certificate::from_der(&ders[0]).expect("the leaf");
    let (_, intermediate) = X509Certificate::from_der(&ders[1]).expect("the intermediate");

    let constraints = leaf
        .basic_constraints()
        .expect("one basicConstraints")
        .expect("basicConstraints");
    assert!(constraints.critical && !constraints.value.ca);
    let usage = leaf.key_usage().expect("one KU").expect("a KU");
    assert!(usage.critical);
    assert_eq!(usage.value.to_string(), "Digital Signature");
    let eku = leaf
        .extended_key_usage()
        .expect("one EKU")
        .expect("an EKU")
        .value;
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
    let aki = leaf
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => a.key_identifier.as_ref(),
            _ => None,
        })
        .expect("an AKI");
    assert!(!ski(&leaf).is_empty());
    assert_eq!(aki.0, ski(&intermediate).as_slice());

    let crl_url = leaf
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::CRLDistributionPoints(points) => points.points.first(),
            _ => None,
        })
        .and_then(|point| match &point.distribution_point {
            Some(DistributionPointName::FullName(names)) => names.first(),
            _ => None,
        })
        .expect("a CRL distribution point");
    let GeneralName::URI(crl_url) = crl_url else {
        panic!("the CRL distribution point is not a URI: {crl_url:?}");
    };
    assert!(
        crl_url.starts_with(&format!("http://{crl_listen}/crl/")),
        "{crl_url}"
    );

    let ca_issuers = leaf
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(aia) => Some(aia),
            _ => None,
        })
        .and_then(|aia| {
            aia.accessdescs
                .iter()
                .find(|d| d.access_method.to_id_string() == "1.3.6.1.5.5.7.48.2")
        })
        .map(|d| match &d.access_location {
            GeneralName::URI(uri) => (*uri).to_owned(),
            other => panic!("caIssuers is not a URI: {other:?}"),
        })
        .expect("an AIA caIssuers");
    assert!(
        ca_issuers.starts_with(&format!("http://{crl_listen}/ca/")),
        "{ca_issuers}"
    );
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client")
        .get(&ca_issuers)
        .send()
        .await
        .expect("the intermediate is served");
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        response.headers()["content-type"].to_str().expect("ASCII"),
        "application/pkix-cert"
    );
    let served = response.bytes().await.expect("the body");
    assert_eq!(served.as_ref(), ders[1].as_slice());

    let sans: Vec<String> = leaf
        .subject_alternative_name()
        .expect("one SAN")
        .expect("a SAN")
        .value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => (*d).to_owned(),
            other => panic!("unexpected SAN {other:?}"),
        })
        .collect();
    assert_eq!(sans, [name]);
}
