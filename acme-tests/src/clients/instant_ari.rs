//! instant-acme with one account across several orders (issue 4): the account URL is known
//! before the order (for CAA `accounturi`), an order may name the certificate it `replaces`
//! (RFC 9773 §5), and a failed validation reports the challenge's error instead of failing.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use instant_acme::{
    Account, AuthorizationStatus, CertificateIdentifier, ChallengeType, Identifier, NewAccount,
    NewOrder, Order, OrderStatus, RetryPolicy,
};
use rcgen::{CertificateParams, DistinguishedName, KeyPair, SanType};

use crate::AcmeTarget;
use crate::challtestsrv::ChallTestSrv;
use crate::clients::instant::ChallengeServer;

/// Polling for the order: a fixed 250 ms interval, bounded by one minute.
const POLL: RetryPolicy = RetryPolicy::new()
    .initial_delay(Duration::from_millis(250))
    .backoff(1.0)
    .timeout(Duration::from_secs(60));

/// How the challenges are answered.
pub enum Solver<'a> {
    /// http-01 from a local server on the target's http-01 port.
    Http01(&'a ChallengeServer),
    /// dns-01 through TXT records in challtestsrv (for a wildcard, at the base name).
    Dns01(&'a ChallTestSrv),
}

/// How validating an order ended.
#[derive(Debug)]
pub enum Validated {
    Ready,
    /// The order became invalid: the answered challenge's error type and detail.
    Invalid {
        error_type: Option<String>,
        detail: Option<String>,
    },
}

/// An account on the target.
pub struct Client {
    pub account: Account,
}

impl Client {
    pub async fn new(target: &AcmeTarget) -> Result<Self> {
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
        Ok(Self { account })
    }

    /// The account URL (what CAA `accounturi` names).
    pub fn url(&self) -> &str {
        self.account.id()
    }

    /// newOrder; the error is instant-acme's, so a test can read the problem.
    pub async fn order(
        &self,
        identifiers: &[Identifier],
        replaces: Option<CertificateIdentifier<'_>>,
    ) -> std::result::Result<Order, instant_acme::Error> {
        let mut request = NewOrder::new(identifiers);
        if let Some(replaces) = replaces {
            request = request.replaces(replaces);
        }
        self.account.new_order(&request).await
    }

    /// Answers every pending authorization of `order` and waits until it settles.
    pub async fn validate(&self, order: &mut Order, solver: &Solver<'_>) -> Result<Validated> {
        let kind = match solver {
            Solver::Http01(_) => ChallengeType::Http01,
            Solver::Dns01(_) => ChallengeType::Dns01,
        };
        let mut answered = Vec::new();
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
            match (solver, &identifier) {
                (Solver::Http01(server), _) => {
                    server.provision(&challenge.token, key_authorization.as_str());
                }
                (Solver::Dns01(dns), Identifier::Dns(name)) => {
                    dns.set_txt(
                        &format!("_acme-challenge.{name}"),
                        &key_authorization.dns_value(),
                    )
                    .await?;
                }
                (_, identifier) => bail!("cannot solve {kind:?} for {identifier:?}"),
            }
            answered.push(challenge.url.clone());
            challenge
                .set_ready()
                .await
                .context("responding to the challenge")?;
        }
        match order.poll_ready(&POLL).await.context("waiting for ready")? {
            OrderStatus::Ready => Ok(Validated::Ready),
            OrderStatus::Invalid => {
                let mut authorizations = order.authorizations();
                while let Some(authorization) = authorizations.next().await {
                    let mut authorization = authorization?;
                    let state = authorization.refresh().await?;
                    if let Some(error) = state
                        .challenges
                        .iter()
                        .filter(|c| answered.contains(&c.url))
                        .find_map(|c| c.error.as_ref())
                    {
                        return Ok(Validated::Invalid {
                            error_type: error.r#type.clone(),
                            detail: error.detail.clone(),
                        });
                    }
                }
                Ok(Validated::Invalid {
                    error_type: None,
                    detail: None,
                })
            }
            status => bail!("order is {status:?}, expected ready or invalid"),
        }
    }

    /// Finalizes a ready order for DNS `names`; returns the leaf certificate, DER.
    pub async fn finalize(&self, order: &mut Order, names: &[&str]) -> Result<Vec<u8>> {
        let mut params = CertificateParams::default();
        params.subject_alt_names = names
            .iter()
            .map(|name| Ok(SanType::DnsName((*name).try_into()?)))
            .collect::<Result<_>>()?;
        params.distinguished_name = DistinguishedName::new();
        let key = KeyPair::generate()?;
        let csr = params.serialize_request(&key)?;
        order.finalize_csr(csr.der()).await.context("finalizing")?;
        let chain = order
            .poll_certificate(&POLL)
            .await
            .context("downloading the certificate")?;
        let leaf = x509_parser::pem::Pem::iter_from_buffer(chain.as_bytes())
            .next()
            .context("the chain holds no certificate")??;
        Ok(leaf.contents)
    }

    /// Order, validate over http-01 and finalize: the leaf, DER.
    pub async fn issue(&self, server: &ChallengeServer, names: &[&str]) -> Result<Vec<u8>> {
        let identifiers: Vec<Identifier> = names
            .iter()
            .map(|name| Identifier::Dns((*name).to_owned()))
            .collect();
        let mut order = self.order(&identifiers, None).await?;
        match self.validate(&mut order, &Solver::Http01(server)).await? {
            Validated::Ready => self.finalize(&mut order, names).await,
            invalid => bail!("the order failed: {invalid:?}"),
        }
    }
}
