//! Revocation with real clients (RFC 8555 §7.6), then the CRL (RFC 5280 §5) fetched over plain
//! HTTP from the distribution point written in the certificate, checked with `openssl crl
//! -verify`, and read to find the revoked serial and its reason.
//!
//! - certbot `revoke` with the account key, and with the certificate's key (`--key-path`,
//!   a `jwk` request);
//! - lego `revoke` with the account key;
//! - instant-acme 0.8.5, whose `Account::revoke` always signs with an account (`kid`):
//!   revocation by the certificate key is an account created from the certificate's key.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use acme_tests::clients::{certbot, instant, lego};
use acme_tests::ports::free_tcp_port;
use acme_tests::{AcmeTarget, Environment};
use instant_acme::{Account, Key, RevocationReason, RevocationRequest};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

/// Bound on one revocation by an external client (certbot is slow to start).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);
/// RFC 5280 §5.3.1 keyCompromise.
const KEY_COMPROMISE: u8 = 1;

/// Mayfly with its CRL listener on a free port of its own.
async fn environment() -> Environment {
    let crl_listen = format!("127.0.0.1:{}", free_tcp_port().expect("a free port"));
    Environment::mayfly_with(&[("MAYFLY__CRL__LISTEN", &crl_listen)])
        .await
        .expect("mayfly starts")
}

#[tokio::test(flavor = "multi_thread")]
async fn certbot_revokes_with_the_account_key() {
    let env = environment().await;
    let name = "revoke.certbot.mayfly.test";
    let work = tempfile::tempdir().expect("temp dir");
    let fullchain = certbot::issue(env.target(), name, work.path())
        .await
        .expect("certbot obtains a certificate");
    certbot_revoke(env.target(), name, work.path(), false).await;
    check_listed(&fullchain, Some(KEY_COMPROMISE)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn certbot_revokes_with_the_certificate_key() {
    let env = environment().await;
    let name = "revoke-key.certbot.mayfly.test";
    let work = tempfile::tempdir().expect("temp dir");
    let fullchain = certbot::issue(env.target(), name, work.path())
        .await
        .expect("certbot obtains a certificate");
    certbot_revoke(env.target(), name, work.path(), true).await;
    check_listed(&fullchain, Some(KEY_COMPROMISE)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lego_revokes() {
    let env = environment().await;
    let name = "revoke.lego.mayfly.test";
    let work = tempfile::tempdir().expect("temp dir");
    let fullchain = lego::issue(env.target(), name, work.path())
        .await
        .expect("lego obtains a certificate");
    let target = env.target();
    let mut command = tokio::process::Command::new("lego");
    command
        .args(["--server", &target.directory_url])
        .args(["--accept-tos", "--email", "test@example.com"])
        .args(["--domains", name])
        .arg("--path")
        .arg(work.path())
        .args(["revoke", "--keep", "--reason", "1"])
        .env("LEGO_CA_CERTIFICATES", &target.tls_root);
    let output = run("lego revoke", command).await;
    assert!(output.status.success(), "{}", describe(&output));
    check_listed(&fullchain, Some(KEY_COMPROMISE)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn instant_acme_revokes_with_the_certificate_key() {
    let env = environment().await;
    let name = "revoke.instant-acme.mayfly.test";
    let work = tempfile::tempdir().expect("temp dir");
    let issued = instant::issue(env.target(), name, work.path())
        .await
        .expect("instant-acme obtains a certificate");

    // The certificate's key becomes the key of a new account, which signs the request.
    let key_pem = std::fs::read_to_string(work.path().join("privkey.pem")).expect("the key");
    let pkcs8 = rcgen::KeyPair::from_pem(&key_pem)
        .expect("a PKCS#8 key")
        .serialize_der();
    let key = Key::from_pkcs8_der(PrivatePkcs8KeyDer::from(pkcs8.clone())).expect("a P-256 key");
    let (account, _) = Account::builder_with_root(&env.target().tls_root)
        .expect("an HTTPS client")
        .create_from_key(
            (key, PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8))),
            env.target().directory_url.clone(),
        )
        .await
        .expect("an account with the certificate's key");
    let leaf = CertificateDer::from(leaf_der(&issued.fullchain));
    account
        .revoke(&RevocationRequest {
            certificate: &leaf,
            reason: Some(RevocationReason::KeyCompromise),
        })
        .await
        .expect("instant-acme revokes");

    // Twice: alreadyRevoked.
    let again = account
        .revoke(&RevocationRequest {
            certificate: &leaf,
            reason: None,
        })
        .await
        .expect_err("a second revocation fails");
    assert!(again.to_string().contains("alreadyRevoked"), "{again}");
    check_listed(&issued.fullchain, Some(KEY_COMPROMISE)).await;
}

/// `certbot revoke` of the certificate certbot stored for `name`, keeping it on disk; with
/// `certificate_key`, signed with the certificate's key instead of the account key.
async fn certbot_revoke(target: &AcmeTarget, name: &str, work_dir: &Path, certificate_key: bool) {
    let live = work_dir.join("config").join("live").join(name);
    let mut command = tokio::process::Command::new("certbot");
    command
        .args(["revoke", "--non-interactive", "--no-delete-after-revoke"])
        .args(["--reason", "keycompromise"])
        .args(["--server", &target.directory_url])
        .arg("--cert-path")
        .arg(live.join("cert.pem"))
        .arg("--config-dir")
        .arg(work_dir.join("config"))
        .arg("--work-dir")
        .arg(work_dir.join("work"))
        .arg("--logs-dir")
        .arg(work_dir.join("logs"))
        .env("REQUESTS_CA_BUNDLE", &target.tls_root);
    if certificate_key {
        command.arg("--key-path").arg(live.join("privkey.pem"));
    }
    let output = run("certbot revoke", command).await;
    assert!(output.status.success(), "{}", describe(&output));
}

/// The leaf's CRL distribution point serves a CRL that `openssl crl -verify` accepts with the
/// intermediate, signed by the intermediate, listing the leaf's serial with `reason`.
async fn check_listed(fullchain: &Path, reason: Option<u8>) {
    let chain = std::fs::read(fullchain).expect("the chain");
    let ders: Vec<Vec<u8>> = Pem::iter_from_buffer(&chain)
        .map(|pem| pem.expect("PEM").contents)
        .collect();
    let (_, leaf) = X509Certificate::from_der(&ders[0]).expect("the leaf");
    let (_, intermediate) = X509Certificate::from_der(&ders[1]).expect("the intermediate");
    let url = distribution_point(&leaf);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client")
        .get(&url)
        .send()
        .await
        .expect("the CRL is served");
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        response.headers()["content-type"].to_str().expect("ASCII"),
        "application/pkix-crl"
    );
    let der = response.bytes().await.expect("the CRL body").to_vec();

    let dir = tempfile::tempdir().expect("temp dir");
    let crl_path = dir.path().join("mayfly.crl");
    let intermediate_path = dir.path().join("intermediate.pem");
    std::fs::write(&crl_path, &der).expect("write the CRL");
    let chain_text = String::from_utf8_lossy(&chain);
    std::fs::write(&intermediate_path, pem_block(&chain_text, 1)).expect("write the CA");
    openssl_verify(&crl_path, &intermediate_path);

    let (_, crl) = CertificateRevocationList::from_der(&der).expect("a DER CRL");
    crl.verify_signature(intermediate.public_key())
        .expect("signed by the intermediate");
    let entry = crl
        .iter_revoked_certificates()
        .find(|entry| entry.raw_serial() == leaf.raw_serial())
        .unwrap_or_else(|| panic!("serial {:x} is not in the CRL", leaf.serial));
    assert_eq!(entry.reason_code().map(|(_, r)| r.0), reason);
}

fn openssl_verify(crl: &Path, ca_file: &Path) {
    let output = std::process::Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-verify", "-in"])
        .arg(crl)
        .arg("-CAfile")
        .arg(ca_file)
        .output()
        .expect("openssl runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.contains("verify OK"),
        "openssl crl -verify: {}",
        describe(&output)
    );
}

fn distribution_point(cert: &X509Certificate<'_>) -> String {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::CRLDistributionPoints(points) => {
                points
                    .points
                    .iter()
                    .find_map(|p| match &p.distribution_point {
                        Some(DistributionPointName::FullName(names)) => {
                            names.iter().find_map(|n| match n {
                                GeneralName::URI(uri) => Some((*uri).to_owned()),
                                _ => None,
                            })
                        }
                        _ => None,
                    })
            }
            _ => None,
        })
        .expect("the leaf has a CRL distribution point")
}

fn leaf_der(fullchain: &Path) -> Vec<u8> {
    let chain = std::fs::read(fullchain).expect("the chain");
    Pem::iter_from_buffer(&chain)
        .next()
        .expect("a certificate")
        .expect("PEM")
        .contents
}

/// The `index`-th PEM block of a chain file, as text.
fn pem_block(chain: &str, index: usize) -> String {
    const END: &str = "-----END CERTIFICATE-----";
    let block = chain
        .split_inclusive(END)
        .nth(index)
        .expect("the PEM block");
    format!("{}\n", block.trim_start())
}

/// Runs a client to completion under [`CLIENT_TIMEOUT`], without proxies.
async fn run(name: &str, mut command: tokio::process::Command) -> Output {
    for variable in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        command.env_remove(variable);
        command.env_remove(variable.to_lowercase());
    }
    command
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    match tokio::time::timeout(CLIENT_TIMEOUT, command.output()).await {
        Ok(output) => output.unwrap_or_else(|e| panic!("running {name}: {e}")),
        Err(_) => panic!("{name} did not finish within {CLIENT_TIMEOUT:?}"),
    }
}

fn describe(output: &Output) -> String {
    format!(
        "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
