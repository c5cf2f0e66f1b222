//! instant-acme with every challenge type (issue 3): dns-01 through pebble-challtestsrv,
//! tls-alpn-01 through a local rustls responder whose certificate carries the acmeIdentifier
//! extension (made with rcgen), and http-01 (optionally with a wrong key authorization) for
//! DNS names and IP addresses. Failure paths report the challenge's error.

use std::collections::HashMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use rcgen::{CertificateParams, CustomExtension, DistinguishedName, KeyPair, SanType};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::AcmeTarget;
use crate::challtestsrv::ChallTestSrv;

/// Polling for the order: a fixed 250 ms interval, bounded by one minute.
const POLL: RetryPolicy = RetryPolicy::new()
    .initial_delay(Duration::from_millis(250))
    .backoff(1.0)
    .timeout(Duration::from_secs(60));
/// The ALPN protocol of RFC 8737.
const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// How the test answers the challenges.
pub enum Solver<'a> {
    /// dns-01: TXT records set in challtestsrv (for a wildcard, at the base name).
    Dns01(&'a ChallTestSrv),
    /// dns-01 with a wrong TXT value.
    Dns01Wrong(&'a ChallTestSrv),
    /// dns-01 with the TXT record at `target`, where the test has pointed a CNAME at
    /// `_acme-challenge.<name>` (one identifier only).
    Dns01Delegated {
        dns: &'a ChallTestSrv,
        target: &'a str,
    },
    /// tls-alpn-01: a rustls responder on 127.0.0.1:`port`.
    TlsAlpn01 { port: u16 },
    /// http-01 on 127.0.0.1:`port`; `wrong` answers with a wrong key authorization, and
    /// `listen: false` leaves the port closed.
    Http01 {
        port: u16,
        wrong: bool,
        listen: bool,
    },
}

/// How an attempt ended.
#[derive(Debug)]
pub enum Outcome {
    /// The full chain PEM was written here.
    Issued(PathBuf),
    /// The order became invalid; the error of the challenge that was answered.
    Invalid {
        challenge_error_type: Option<String>,
        challenge_error_detail: Option<String>,
    },
}

/// Creates an account and an order for `identifiers`, answers every authorization with
/// `solver`, and finalizes if the order becomes ready.
pub async fn attempt(
    target: &AcmeTarget,
    identifiers: &[Identifier],
    solver: Solver<'_>,
    work_dir: &Path,
) -> Result<Outcome> {
    crate::install_crypto_provider();
    let (account, _credentials) = Account::builder_with_root(&target.tls_root)?
        .create(
            &NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            target.directory_url.clone(),
            None,
        )
        .await
        .context("creating the account")?;
    let mut order = account
        .new_order(&NewOrder::new(identifiers))
        .await
        .context("creating the order")?;

    let kind = match solver {
        Solver::Dns01(_) | Solver::Dns01Wrong(_) | Solver::Dns01Delegated { .. } => {
            ChallengeType::Dns01
        }
        Solver::TlsAlpn01 { .. } => ChallengeType::TlsAlpn01,
        Solver::Http01 { .. } => ChallengeType::Http01,
    };
    let tls = match solver {
        Solver::TlsAlpn01 { port } => Some(TlsAlpnResponder::start(port).await?),
        _ => None,
    };
    let http = match solver {
        Solver::Http01 {
            port, listen: true, ..
        } => Some(HttpResponder::start(port).await?),
        _ => None,
    };
    let mut challenge_urls = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization.context("fetching an authorization")?;
        match authorization.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            status => bail!("authorization is {status:?}, expected pending"),
        }
        let identifier = authorization.identifier().identifier.clone();
        let mut challenge = authorization
            .challenge(kind.clone())
            .ok_or_else(|| anyhow!("no {kind:?} challenge offered for {identifier:?}"))?;
        let key_authorization = challenge.key_authorization();
        match (&solver, &identifier) {
            (Solver::Dns01(dns), Identifier::Dns(name)) => {
                dns.set_txt(
                    &format!("_acme-challenge.{name}"),
                    &key_authorization.dns_value(),
                )
                .await?;
            }
            (Solver::Dns01Delegated { dns, target }, Identifier::Dns(_)) => {
                dns.set_txt(target, &key_authorization.dns_value()).await?;
            }
            (Solver::Dns01Wrong(dns), Identifier::Dns(name)) => {
                dns.set_txt(&format!("_acme-challenge.{name}"), "not-the-right-digest")
                    .await?;
            }
            (Solver::TlsAlpn01 { .. }, identifier) => {
                let responder = tls.as_ref().context("no responder")?;
                responder.provision(identifier, key_authorization.digest().as_ref())?;
            }
            (Solver::Http01 { wrong, .. }, _) => {
                if let Some(http) = &http {
                    let body = if *wrong {
                        format!("{}.wrong-thumbprint", challenge.token)
                    } else {
                        key_authorization.as_str().to_owned()
                    };
                    http.provision(&challenge.token, &body);
                }
            }
            (_, identifier) => bail!("cannot solve {kind:?} for {identifier:?}"),
        }
        challenge_urls.push(challenge.url.clone());
        challenge
            .set_ready()
            .await
            .context("responding to the challenge")?;
    }

    let status = order.poll_ready(&POLL).await.context("waiting for ready")?;
    if status == OrderStatus::Invalid {
        // The error of the challenge that was answered, read from its authorization.
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization?;
            let state = authorization.refresh().await?;
            if let Some(challenge) = state
                .challenges
                .iter()
                .find(|c| challenge_urls.contains(&c.url) && c.error.is_some())
            {
                let error = challenge.error.as_ref();
                return Ok(Outcome::Invalid {
                    challenge_error_type: error.and_then(|e| e.r#type.clone()),
                    challenge_error_detail: error.and_then(|e| e.detail.clone()),
                });
            }
        }
        return Ok(Outcome::Invalid {
            challenge_error_type: None,
            challenge_error_detail: None,
        });
    }
    if status != OrderStatus::Ready {
        bail!("order is {status:?}, expected ready");
    }

    let sans: Vec<SanType> = identifiers
        .iter()
        .map(|identifier| match identifier {
            Identifier::Dns(name) => Ok(SanType::DnsName(name.as_str().try_into()?)),
            Identifier::Ip(ip) => Ok(SanType::IpAddress(*ip)),
            other => Err(anyhow!("unsupported identifier {other:?}")),
        })
        .collect::<Result<_>>()?;
    let mut params = CertificateParams::default();
    params.subject_alt_names = sans;
    params.distinguished_name = DistinguishedName::new();
    let key = KeyPair::generate()?;
    let csr = params.serialize_request(&key)?;
    order.finalize_csr(csr.der()).await.context("finalizing")?;
    let chain = order
        .poll_certificate(&POLL)
        .await
        .context("downloading the certificate")?;
    let fullchain = work_dir.join("fullchain.pem");
    fs::write(&fullchain, chain)?;
    fs::write(work_dir.join("privkey.pem"), key.serialize_pem())?;
    Ok(Outcome::Issued(fullchain))
}

/// A poisoned lock only means another connection task panicked; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Answers tls-alpn-01: one certificate per SNI name (the reverse-DNS name for addresses),
/// each self-signed with the acmeIdentifier extension. Stops when dropped.
struct TlsAlpnResponder {
    certificates: Arc<Mutex<HashMap<String, Arc<rustls::sign::CertifiedKey>>>>,
    task: JoinHandle<()>,
}

impl TlsAlpnResponder {
    async fn start(port: u16) -> Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .with_context(|| format!("binding the tls-alpn-01 responder to 127.0.0.1:{port}"))?;
        let certificates = Arc::new(Mutex::new(HashMap::new()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(BySni(certificates.clone())));
        config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // The validator closes the connection after the handshake.
                    if let Ok(mut tls) = acceptor.accept(socket).await {
                        let mut buffer = [0u8; 64];
                        let _ = tls.read(&mut buffer).await;
                    }
                });
            }
        });
        Ok(Self { certificates, task })
    }

    fn provision(&self, identifier: &Identifier, digest: &[u8]) -> Result<()> {
        let (sni, san) = match identifier {
            Identifier::Dns(name) => (name.clone(), SanType::DnsName(name.as_str().try_into()?)),
            Identifier::Ip(ip) => (reverse_dns_name(*ip), SanType::IpAddress(*ip)),
            other => bail!("unsupported identifier {other:?}"),
        };
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![san];
        params.custom_extensions = vec![CustomExtension::new_acme_identifier(digest)];
        let cert = params.self_signed(&key)?;
        // Not `with_single_cert`: webpki would refuse the critical acmeIdentifier extension.
        let signing_key = rustls::crypto::aws_lc_rs::default_provider()
            .key_provider
            .load_private_key(
                PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| anyhow!("{e}"))?,
            )?;
        let certified = rustls::sign::CertifiedKey::new(
            vec![CertificateDer::from(cert.der().to_vec())],
            signing_key,
        );
        lock(&self.certificates).insert(sni, Arc::new(certified));
        Ok(())
    }
}

impl Drop for TlsAlpnResponder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug)]
struct BySni(Arc<Mutex<HashMap<String, Arc<rustls::sign::CertifiedKey>>>>);

impl rustls::server::ResolvesServerCert for BySni {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let name = hello.server_name()?.to_ascii_lowercase();
        lock(&self.0).get(&name).cloned()
    }
}

/// RFC 8738 §6: the SNI of an IP identifier is its reverse-DNS name.
pub fn reverse_dns_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut name: String = v6
                .octets()
                .iter()
                .rev()
                .map(|byte| format!("{:x}.{:x}.", byte & 0x0f, byte >> 4))
                .collect();
            name.push_str("ip6.arpa");
            name
        }
    }
}

/// Answers `GET /.well-known/acme-challenge/<token>` with what was provisioned, 404 else.
struct HttpResponder {
    responses: Arc<Mutex<HashMap<String, String>>>,
    task: JoinHandle<()>,
}

impl HttpResponder {
    async fn start(port: u16) -> Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .with_context(|| format!("binding the http-01 responder to 127.0.0.1:{port}"))?;
        let responses: Arc<Mutex<HashMap<String, String>>> = Arc::new(Mutex::new(HashMap::new()));
        let shared = responses.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let responses = shared.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head);
                    let path = head.split_whitespace().nth(1).unwrap_or_default();
                    let body = path
                        .strip_prefix("/.well-known/acme-challenge/")
                        .and_then(|token| lock(&responses).get(token).cloned());
                    let response = match body {
                        Some(body) => format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        ),
                        None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_owned(),
                    };
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Ok(Self { responses, task })
    }

    fn provision(&self, token: &str, body: &str) {
        lock(&self.responses).insert(token.to_owned(), body.to_owned());
    }
}

impl Drop for HttpResponder {
    fn drop(&mut self) {
        self.task.abort();
    }
}
