//! The ACME side of the agent, on instant-acme: the account (created once, stored 0600,
//! reused), renewal information (RFC 9773), and one order from newOrder to the downloaded
//! chain. The one request instant-acme cannot make, the tkauth-01 answer, goes through
//! [`super::tkauth`] with the same account key and the same trusted roots.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, CertificateIdentifier,
    ChallengeType, ExternalAccountKey, Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use rcgen::{CertificateParams, DistinguishedName, KeyPair};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};

use super::config::{AgentConfig, CertificateConfig, ChallengeConfig, ServerConfig};
use super::dns01::DnsHook;
use super::files;
use super::hooks;
use super::http01::Standalone;
use super::schedule::Window;
use super::tkauth::TokenAnswerer;
use super::webroot::Webroot;

/// Polling an order: start at a quarter second, back off gently, give up after two minutes
/// (validation by the server is bounded well below that).
const POLL: RetryPolicy = RetryPolicy::new()
    .initial_delay(Duration::from_millis(250))
    .backoff(1.5)
    .timeout(Duration::from_secs(120));
/// The dns-01 hook gets as long as the post_renew hook.
const DNS_HOOK_TIMEOUT: Duration = hooks::DEFAULT_TIMEOUT;
/// Bound on each request the agent makes itself (the tkauth-01 answer and its nonce); the
/// server checks a token on the spot, so an answer takes well under a second.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The account file: the server it belongs to and instant-acme's credentials.
#[derive(Serialize, Deserialize)]
struct AccountFile {
    directory: String,
    credentials: AccountCredentials,
}

/// The account as instant-acme holds it, with what the agent's own requests need: the
/// account key (PKCS#8 DER) and the server's settings.
#[derive(Clone)]
pub struct Session {
    pub account: Account,
    key_pkcs8: Arc<[u8]>,
    server: ServerConfig,
}

impl Session {
    fn new(account: Account, key_pkcs8: Arc<[u8]>, server: &ServerConfig) -> Self {
        Session {
            account,
            key_pkcs8,
            server: server.clone(),
        }
    }

    /// The answerer of tkauth-01 challenges for `certificate`, with `command`.
    fn token_answerer(
        &self,
        certificate: &CertificateConfig,
        command: &str,
    ) -> Result<TokenAnswerer> {
        let key = crate::jose::SigningKey::from_pkcs8(&self.key_pkcs8)
            .context("the account key cannot sign the tkauth-01 answer")?;
        let mut http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT);
        if let Some(tls) = tls_config(&self.server)? {
            http = http.tls_backend_preconfigured(tls);
        }
        let timeout = certificate
            .hooks
            .timeout
            .and_then(|t| t.0.try_into().ok())
            .unwrap_or(hooks::DEFAULT_TIMEOUT);
        Ok(TokenAnswerer::new(
            certificate.id(),
            command,
            timeout,
            &self.server.directory,
            http.build()
                .context("building the HTTPS client for tkauth-01")?,
            key,
            self.account.id(),
        ))
    }
}

fn key_of(credentials: &AccountCredentials) -> Arc<[u8]> {
    credentials.private_key().secret_pkcs8_der().into()
}

/// Load the account from `config.account.file`, or create it on the server and store it.
pub async fn account(config: &AgentConfig) -> Result<Session> {
    let path = &config.account.file;
    match std::fs::read(path) {
        Ok(bytes) => {
            let stored: AccountFile = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not an account file", path.display()))?;
            if stored.directory != config.server.directory {
                bail!(
                    "{} holds an account on {}, not on {}; point account.file elsewhere",
                    path.display(),
                    stored.directory,
                    config.server.directory
                );
            }
            let key_pkcs8 = key_of(&stored.credentials);
            let account = builder(&config.server)?
                .from_credentials(stored.credentials)
                .await
                .with_context(|| format!("loading the account from {}", path.display()))?;
            Ok(Session::new(account, key_pkcs8, &config.server))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(config, path).await,
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

async fn create(config: &AgentConfig, path: &Path) -> Result<Session> {
    let contact: Vec<&str> = config.server.contact.iter().map(String::as_str).collect();
    let eab = match &config.server.eab {
        Some(eab) => {
            let key = URL_SAFE_NO_PAD
                .decode(eab.hmac_key.trim_end_matches('='))
                .context("server.eab.hmac_key is not base64url")?;
            Some(ExternalAccountKey::new(eab.kid.clone(), &key))
        }
        None => None,
    };
    let (account, credentials) = builder(&config.server)?
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            config.server.directory.clone(),
            eab.as_ref(),
        )
        .await
        .with_context(|| format!("creating an account on {}", config.server.directory))?;
    let session = Session::new(account, key_of(&credentials), &config.server);
    let stored = serde_json::to_vec_pretty(&AccountFile {
        directory: config.server.directory.clone(),
        credentials,
    })?;
    files::write_atomic(path, &stored, files::PRIVATE)
        .with_context(|| format!("storing the new account in {}", path.display()))?;
    tracing::info!(account = session.account.id(), "created an ACME account");
    Ok(session)
}

/// An account builder whose HTTPS client trusts every certificate in `ca_bundle`, or the
/// platform's roots without one.
fn builder(server: &ServerConfig) -> Result<instant_acme::AccountBuilder> {
    let Some(tls) = tls_config(server)? else {
        return Ok(Account::builder()?);
    };
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    let client: HyperClient<_, BodyWrapper<Bytes>> =
        HyperClient::builder(TokioExecutor::new()).build(connector);
    Ok(Account::builder_with_http(Box::new(client)))
}

/// A TLS configuration trusting every certificate in `ca_bundle` and nothing else; `None`
/// without a bundle (the platform's roots then decide).
fn tls_config(server: &ServerConfig) -> Result<Option<rustls::ClientConfig>> {
    let Some(bundle) = &server.ca_bundle else {
        return Ok(None);
    };
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(bundle)
        .with_context(|| format!("reading server.ca_bundle {}", bundle.display()))?
    {
        let certificate = certificate
            .with_context(|| format!("parsing server.ca_bundle {}", bundle.display()))?;
        roots.add(certificate)?;
    }
    if roots.is_empty() {
        bail!("server.ca_bundle {} holds no certificate", bundle.display());
    }
    Ok(Some(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// The server's renewal information for `ari_id`: the window and how long to wait before
/// asking again. `Ok(None)` when the server offers no ARI.
pub async fn renewal_info(account: &Account, ari_id: &str) -> Result<Option<(Window, Duration)>> {
    let id = certificate_identifier(ari_id)?;
    match account.renewal_info(&id).await {
        Ok((info, retry_after)) => Ok(Some((
            Window {
                start: info.suggested_window.start,
                end: info.suggested_window.end,
            },
            retry_after,
        ))),
        Err(instant_acme::Error::Unsupported(_)) => Ok(None),
        Err(e) => Err(e).context("fetching renewal information (RFC 9773)"),
    }
}

fn certificate_identifier(ari_id: &str) -> Result<CertificateIdentifier<'static>> {
    let (aki, serial) = ari_id
        .split_once('.')
        .ok_or_else(|| anyhow!("bad certificate identifier {ari_id:?}"))?;
    Ok(CertificateIdentifier {
        authority_key_identifier: Cow::Owned(aki.to_owned()),
        serial: Cow::Owned(serial.to_owned()),
    })
}

/// What an order produced.
pub struct Issued {
    /// The chain as downloaded: leaf first, PEM.
    pub chain_pem: String,
}

/// Run one order for `certificate` with `key`, replacing `replaces` (an ARI identifier)
/// when the server offers ARI.
pub async fn order(
    session: &Session,
    certificate: &CertificateConfig,
    key: &KeyPair,
    replaces: Option<&str>,
) -> Result<Issued> {
    let identifiers: Vec<Identifier> = certificate
        .names
        .iter()
        .map(|name| match name.parse() {
            Ok(ip) => Identifier::Ip(ip),
            Err(_) => Identifier::Dns(name.clone()),
        })
        .collect();
    let account = &session.account;
    let mut new_order = NewOrder::new(&identifiers);
    if let Some(profile) = profile(account, certificate)? {
        new_order = new_order.profile(profile);
    }
    // The caller passes `replaces` only after the server answered a renewalInfo request;
    // instant-acme refuses it without a renewalInfo URL in the directory.
    let replaced = replaces.map(certificate_identifier).transpose()?;
    let mut order = match &replaced {
        Some(id) => match account.new_order(&new_order.replaces(id.clone())).await {
            // RFC 9773 §5: the old certificate may already have been replaced (by an order
            // of ours that failed after finalization, or by another client); order afresh.
            Err(instant_acme::Error::Api(problem))
                if problem
                    .r#type
                    .as_deref()
                    .is_some_and(|t| t.ends_with(":alreadyReplaced")) =>
            {
                let mut fresh = NewOrder::new(&identifiers);
                if let Some(profile) = profile(account, certificate)? {
                    fresh = fresh.profile(profile);
                }
                account.new_order(&fresh).await
            }
            other => other,
        },
        None => account.new_order(&new_order).await,
    }
    .context("newOrder")?;

    let mut responder = Responder::start(session, certificate).await?;
    let answered = answer_challenges(&mut order, &mut responder).await;
    let status = match answered {
        Ok(()) => order
            .poll_ready(&POLL)
            .await
            .context("waiting for the order"),
        Err(e) => Err(e),
    };
    responder.cleanup().await;
    let status = status?;
    if status != OrderStatus::Ready {
        bail!(
            "the order is {status:?}, not ready: {}",
            failure_details(&mut order).await
        );
    }

    let mut params = CertificateParams::new(certificate.names.clone())?;
    params.distinguished_name = DistinguishedName::new();
    let csr = params.serialize_request(key)?;
    order
        .finalize_csr(csr.der())
        .await
        .context("finalizing the order")?;
    let chain_pem = order
        .poll_certificate(&POLL)
        .await
        .context("downloading the certificate")?;
    Ok(Issued { chain_pem })
}

/// The profile to request: the configured one when the server lists it. A server that lists
/// no profiles gets none (with a warning); one that lists others is an error (a typo).
fn profile<'a>(account: &Account, certificate: &'a CertificateConfig) -> Result<Option<&'a str>> {
    let Some(wanted) = certificate.profile.as_deref() else {
        return Ok(None);
    };
    let offered: Vec<String> = account.profiles().map(|p| p.name.to_owned()).collect();
    if offered.is_empty() {
        tracing::warn!(
            certificate = certificate.id(),
            "the server lists no profiles; ordering without profile {wanted:?}"
        );
        return Ok(None);
    }
    if !offered.iter().any(|name| name == wanted) {
        bail!("the server offers no profile {wanted:?} (it offers {offered:?})");
    }
    Ok(Some(wanted))
}

async fn answer_challenges(
    order: &mut instant_acme::Order,
    responder: &mut Responder,
) -> Result<()> {
    let wanted = responder.challenge_type();
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization.context("fetching an authorization")?;
        match authorization.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            status => bail!(
                "the authorization for {} is {status:?}",
                authorization.identifier()
            ),
        }
        let identifier = authorization.identifier().to_string();
        let mut challenge = authorization
            .challenge(wanted.clone())
            .ok_or_else(|| anyhow!("the server offers no {wanted:?} challenge for {identifier}"))?;
        let key_authorization = challenge.key_authorization();
        match responder {
            Responder::Token(answerer) => {
                // The answer is the token itself, not the empty object of set_ready.
                let token = answerer.token(&identifier).await?;
                answerer.answer(&challenge.url, &identifier, &token).await?;
                continue;
            }
            Responder::Standalone(server) => {
                server.provision(&challenge.token, key_authorization.as_str())
            }
            Responder::Webroot(webroot) => webroot
                .provision(&challenge.token, key_authorization.as_str())
                .map_err(|e| anyhow!(e))?,
            Responder::Dns { hook, delay } => {
                hook.present(&identifier, &key_authorization.dns_value())
                    .await
                    .map_err(|e| anyhow!(e))?;
                tokio::time::sleep(*delay).await;
            }
        }
        challenge
            .set_ready()
            .await
            .with_context(|| format!("answering the challenge for {identifier}"))?;
    }
    Ok(())
}

/// Why an order failed: the order's error, else each failed challenge's error.
async fn failure_details(order: &mut instant_acme::Order) -> String {
    let mut details = Vec::new();
    if let Some(problem) = &order.state().error {
        details.push(problem.to_string());
    }
    let mut authorizations = order.authorizations();
    while let Some(Ok(authorization)) = authorizations.next().await {
        let identifier = authorization.identifier().to_string();
        for challenge in &authorization.challenges {
            if let Some(problem) = &challenge.error {
                details.push(format!("{identifier}: {problem}"));
            }
        }
    }
    if details.is_empty() {
        "the server gave no reason".to_owned()
    } else {
        details.join("; ")
    }
}

/// The challenge responder for one order.
enum Responder {
    Standalone(Standalone),
    Webroot(Webroot),
    Dns { hook: DnsHook, delay: Duration },
    Token(Box<TokenAnswerer>),
}

impl Responder {
    async fn start(session: &Session, certificate: &CertificateConfig) -> Result<Self> {
        Ok(match &certificate.challenge {
            ChallengeConfig::Http01Standalone { listen } => {
                Responder::Standalone(Standalone::start(*listen).await.map_err(|e| anyhow!(e))?)
            }
            ChallengeConfig::Http01Webroot { webroot } => Responder::Webroot(Webroot::new(webroot)),
            ChallengeConfig::Dns01Hook {
                command,
                propagation_delay,
            } => Responder::Dns {
                hook: DnsHook::new(command, DNS_HOOK_TIMEOUT),
                delay: propagation_delay.0.try_into().unwrap_or_default(),
            },
            ChallengeConfig::TkAuth01 { token_command } => Responder::Token(Box::new(
                session.token_answerer(certificate, token_command)?,
            )),
        })
    }

    fn challenge_type(&self) -> ChallengeType {
        match self {
            Responder::Standalone(_) | Responder::Webroot(_) => ChallengeType::Http01,
            Responder::Dns { .. } => ChallengeType::Dns01,
            Responder::Token(_) => ChallengeType::Unknown("tkauth-01".to_owned()),
        }
    }

    async fn cleanup(&mut self) {
        match self {
            Responder::Standalone(_) | Responder::Token(_) => {}
            Responder::Webroot(webroot) => webroot.cleanup(),
            Responder::Dns { hook, .. } => hook.cleanup().await,
        }
    }
}
