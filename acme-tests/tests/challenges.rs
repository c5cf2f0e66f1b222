//! Issue 3, challenges and identifiers, with real clients against a real `mayfly serve`:
//! dns-01 (TXT records in pebble-challtestsrv, CNAME followed), tls-alpn-01, wildcards and IP
//! identifiers, and the failure paths (wrong TXT, refused connection, wrong key
//! authorization), each with the exact problem type.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

use acme_tests::Environment;
use acme_tests::challtestsrv::ChallTestSrv;
use acme_tests::clients::instant_challenges::{Outcome, Solver, attempt};
use acme_tests::clients::{certbot_dns, dehydrated, lego_challenges};
use acme_tests::ports::free_tcp_port;
use acme_tests::verify::verify_chain;
use instant_acme::Identifier;
use x509_parser::extensions::GeneralName;

/// DNS query type numbers as challtestsrv records them.
const QTYPE_TXT: u16 = 16;

fn dns(name: &str) -> Identifier {
    Identifier::Dns(name.to_owned())
}

/// The chain issued through instant-acme, and the directory that holds it.
async fn issued(
    env: &Environment,
    identifiers: &[Identifier],
    solver: Solver<'_>,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let work = tempfile::tempdir().expect("temp dir");
    match attempt(env.target(), identifiers, solver, work.path())
        .await
        .expect("instant-acme runs")
    {
        Outcome::Issued(chain) => (work, chain),
        other => panic!("expected a certificate, got {other:?}"),
    }
}

async fn failed(
    env: &Environment,
    identifiers: &[Identifier],
    solver: Solver<'_>,
) -> (String, String) {
    let work = tempfile::tempdir().expect("temp dir");
    match attempt(env.target(), identifiers, solver, work.path())
        .await
        .expect("instant-acme runs")
    {
        Outcome::Invalid {
            challenge_error_type,
            challenge_error_detail,
        } => (
            challenge_error_type.expect("the challenge has an error type"),
            challenge_error_detail.unwrap_or_default(),
        ),
        other => panic!("expected an invalid order, got {other:?}"),
    }
}

/// The chain verifies against Mayfly's root for exactly these DNS names and IP addresses.
fn check_chain(env: &Environment, chain: &Path, names: &[&str], ips: &[&str]) {
    verify_chain(chain, &env.target().issuer_root, names).expect("the issued chain verifies");
    let pem = std::fs::read(chain).expect("chain readable");
    let (_, leaf) = x509_parser::pem::parse_x509_pem(&pem).expect("PEM");
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf.contents).expect("DER");
    let got: BTreeSet<IpAddr> = cert
        .subject_alternative_name()
        .expect("SAN parses")
        .expect("SAN present")
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let want: BTreeSet<IpAddr> = ips.iter().map(|ip| ip.parse().expect("IP")).collect();
    assert_eq!(got, want, "IP SANs");
}

/// Mayfly asked challtestsrv for the TXT record at `_acme-challenge.<base>`.
async fn assert_txt_queried(env: &Environment, base: &str) {
    let host = format!("_acme-challenge.{base}");
    let queries = env
        .challtestsrv()
        .dns_queries(&host)
        .await
        .expect("history");
    assert!(
        queries.iter().any(|q| q.qtype == QTYPE_TXT),
        "no TXT query for {host}: {queries:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// instant-acme

#[tokio::test(flavor = "multi_thread")]
async fn instant_acme_dns01() {
    let env = Environment::mayfly().await.expect("mayfly starts");
    let name = "dns01.instant.test";
    let (_work, chain) = issued(&env, &[dns(name)], Solver::Dns01(env.challtestsrv())).await;
    check_chain(&env, &chain, &[name], &[]);
    assert_txt_queried(&env, name).await;
}

/// `_acme-challenge.<name>` is a CNAME into another zone, where the TXT record lives.
#[tokio::test(flavor = "multi_thread")]
async fn instant_acme_dns01_follows_a_cname() {
    let env = Environment::mayfly().await.expect("mayfly starts");
    let name = "cname.instant.test";
    let delegated = "_acme-challenge.cname.delegated.test";
    let dns_server = env.challtestsrv();
    dns_server
        .set_cname(&format!("_acme-challenge.{name}"), delegated)
        .await
        .expect("set-cname");
    // The solver writes the TXT at _acme-challenge.<name>; move it behind the CNAME by
    // answering for the delegated name instead.
    let work = tempfile::tempdir().expect("temp dir");
    let outcome = attempt(
        env.target(),
        &[dns(name)],
        Solver::Dns01Delegated {
            dns: dns_server,
            target: delegated,
        },
        work.path(),
    )
    .await
    .expect("instant-acme runs");
    let Outcome::Issued(chain) = outcome else {
        panic!("expected a certificate, got {outcome:?}");
    };
    check_chain(&env, &chain, &[name], &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn instant_acme_tls_alpn01() {
    let port = free_tcp_port().expect("port");
    let env =
        Environment::mayfly_with(&[("MAYFLY__VALIDATION__TLS_ALPN01_PORT", &port.to_string())])
            .await
            .expect("mayfly starts");
    let name = "tls-alpn.instant.test";
    let (_work, chain) = issued(&env, &[dns(name)], Solver::TlsAlpn01 { port }).await;
    check_chain(&env, &chain, &[name], &[]);
}

/// RFC 8738: an IP identifier over tls-alpn-01 (SNI is the reverse-DNS name).
#[tokio::test(flavor = "multi_thread")]
async fn instant_acme_ip_tls_alpn01() {
    let port = free_tcp_port().expect("port");
    let env =
        Environment::mayfly_with(&[("MAYFLY__VALIDATION__TLS_ALPN01_PORT", &port.to_string())])
            .await
            .expect("mayfly starts");
    let ip: IpAddr = "127.0.0.1".parse().expect("IP");
    let (_work, chain) = issued(&env, &[Identifier::Ip(ip)], Solver::TlsAlpn01 { port }).await;
    check_chain(&env, &chain, &[], &["127.0.0.1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn instant_acme_ip_http01() {
    let env = Environment::mayfly().await.expect("mayfly starts");
    let port = env.target().http01_port;
    let ip: IpAddr = "127.0.0.1".parse().expect("IP");
    let (_work, chain) = issued(
        &env,
        &[Identifier::Ip(ip)],
        Solver::Http01 {
            port,
            wrong: false,
            listen: true,
        },
    )
    .await;
    check_chain(&env, &chain, &[], &["127.0.0.1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn instant_acme_wildcard_dns01() {
    let env = Environment::mayfly().await.expect("mayfly starts");
    let (_work, chain) = issued(
        &env,
        &[dns("*.wild.instant.test"), dns("wild.instant.test")],
        Solver::Dns01(env.challtestsrv()),
    )
    .await;
    check_chain(
        &env,
        &chain,
        &["*.wild.instant.test", "wild.instant.test"],
        &[],
    );
    assert_txt_queried(&env, "wild.instant.test").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn instant_acme_wrong_txt_is_incorrect_response() {
    let env = Environment::mayfly().await.expect("mayfly starts");
    let (kind, detail) = failed(
        &env,
        &[dns("wrong-txt.instant.test")],
        Solver::Dns01Wrong(env.challtestsrv()),
    )
    .await;
    assert_eq!(
        kind, "urn:ietf:params:acme:error:incorrectResponse",
        "{detail}"
    );
    assert!(detail.contains("not-the-right-digest"), "{detail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn instant_acme_refused_connection_is_connection() {
    let env = Environment::mayfly().await.expect("mayfly starts");
    let port = env.target().http01_port;
    let (kind, detail) = failed(
        &env,
        &[dns("refused.instant.test")],
        Solver::Http01 {
            port,
            wrong: false,
            listen: false,
        },
    )
    .await;
    assert_eq!(kind, "urn:ietf:params:acme:error:connection", "{detail}");
    assert!(detail.contains("refused"), "{detail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn instant_acme_wrong_key_authorization_is_incorrect_response() {
    let env = Environment::mayfly().await.expect("mayfly starts");
    let port = env.target().http01_port;
    let (kind, detail) = failed(
        &env,
        &[dns("wrong-ka.instant.test")],
        Solver::Http01 {
            port,
            wrong: true,
            listen: true,
        },
    )
    .await;
    assert_eq!(
        kind, "urn:ietf:params:acme:error:incorrectResponse",
        "{detail}"
    );
    assert!(detail.contains("wrong-thumbprint"), "{detail}");
}

// ---------------------------------------------------------------------------------------------
// certbot

#[tokio::test(flavor = "multi_thread")]
async fn certbot_dns01_manual_hooks() {
    let env = Environment::mayfly().await.expect("mayfly starts");
    let work = tempfile::tempdir().expect("temp dir");
    let name = "dns01.certbot.test";
    let chain = certbot_dns::issue(
        env.target(),
        &[name],
        env.challtestsrv().management_url(),
        work.path(),
    )
    .await
    .expect("certbot obtains a certificate");
    check_chain(&env, &chain, &[name], &[]);
    assert_txt_queried(&env, name).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn certbot_wildcard_dns01() {
    let env = Environment::mayfly().await.expect("mayfly starts");
    let work = tempfile::tempdir().expect("temp dir");
    let names = ["*.wild.certbot.test", "wild.certbot.test"];
    let chain = certbot_dns::issue(
        env.target(),
        &names,
        env.challtestsrv().management_url(),
        work.path(),
    )
    .await
    .expect("certbot obtains a wildcard certificate");
    check_chain(&env, &chain, &names, &[]);
}

// ---------------------------------------------------------------------------------------------
// lego

#[tokio::test(flavor = "multi_thread")]
async fn lego_tls_alpn01() {
    let port = free_tcp_port().expect("port");
    let env =
        Environment::mayfly_with(&[("MAYFLY__VALIDATION__TLS_ALPN01_PORT", &port.to_string())])
            .await
            .expect("mayfly starts");
    let work = tempfile::tempdir().expect("temp dir");
    let name = "tls.lego.test";
    let chain = lego_challenges::issue(
        env.target(),
        &[name],
        lego_challenges::Challenge::TlsAlpn01 { port },
        work.path(),
    )
    .await
    .expect("lego obtains a certificate");
    check_chain(&env, &chain, &[name], &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn lego_dns01_exec() {
    let env = Environment::mayfly().await.expect("mayfly starts");
    let work = tempfile::tempdir().expect("temp dir");
    let names = ["*.dns.lego.test", "dns.lego.test"];
    let chain = lego_challenges::issue(
        env.target(),
        &names,
        lego_challenges::Challenge::Dns01 {
            resolver: env.challtestsrv().dns_addr(),
            challtestsrv_url: env.challtestsrv().management_url(),
        },
        work.path(),
    )
    .await
    .expect("lego obtains a certificate");
    check_chain(&env, &chain, &names, &[]);
    assert_txt_queried(&env, "dns.lego.test").await;
}

// ---------------------------------------------------------------------------------------------
// dehydrated

#[tokio::test(flavor = "multi_thread")]
async fn dehydrated_http01_hook() {
    let env = Environment::mayfly().await.expect("mayfly starts");
    // A second challtestsrv answers http-01 on the port Mayfly validates; dehydrated's hook
    // publishes each key authorization to it.
    let responder = ChallTestSrv::start_with_http01(env.target().http01_port)
        .await
        .expect("challtestsrv with http-01 starts");
    let work = tempfile::tempdir().expect("temp dir");
    let name = "http.dehydrated.test";
    let chain = dehydrated::issue(
        env.target(),
        name,
        dehydrated::Challenge::Http01 {
            challtestsrv_url: responder.management_url(),
        },
        work.path(),
    )
    .await
    .expect("dehydrated obtains a certificate");
    check_chain(&env, &chain, &[name], &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn dehydrated_dns01_hook() {
    let env = Environment::mayfly().await.expect("mayfly starts");
    let work = tempfile::tempdir().expect("temp dir");
    let name = "dns.dehydrated.test";
    let chain = dehydrated::issue(
        env.target(),
        name,
        dehydrated::Challenge::Dns01 {
            challtestsrv_url: env.challtestsrv().management_url(),
        },
        work.path(),
    )
    .await
    .expect("dehydrated obtains a certificate");
    check_chain(&env, &chain, &[name], &[]);
    assert_txt_queried(&env, name).await;
}
