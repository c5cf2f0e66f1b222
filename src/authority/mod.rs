//! The authority: ACME use cases and state transitions. It is the only writer to storage;
//! `validation` and `issuer` return results and the authority records them.

pub mod account;
pub mod admin;
pub mod audit;
mod chain;
pub mod challenge;
pub mod direct;
pub mod finalize;
pub mod jobs;
pub mod limits;
pub mod order;
pub mod readiness;
pub mod renewal;
pub mod revocation;
pub mod state;
mod tkauth;
pub mod token;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;

use crate::acme::Problem;
use crate::clock::Clock;
use crate::config::Config;
use crate::issuer::{Issuer, IssuerError};
use crate::policy::{Claims, Profiles};
use crate::provisioner::{ProvisionerPolicy, Provisioners};
use crate::storage::{Store, StoreError};
use crate::validation::Validator;

/// Errors of the use cases. `Problem` is for the client; the rest are internal and become a
/// generic 500 at the API's single conversion point (ARCHITECTURE decision 5).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Boxed: a problem is large and errors travel on every `Result`.
    #[error(transparent)]
    Problem(Box<Problem>),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("issuer: {0}")]
    Issuer(#[from] IssuerError),
}

impl From<Problem> for Error {
    fn from(p: Problem) -> Self {
        Error::Problem(Box::new(p))
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// The rules the use cases apply, taken from the configuration once.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The bounds of every certificate lifetime (`[acme.claims]`).
    pub claims: Claims,
    /// The profiles an order may choose (`[profiles]`): validity, order and authorization
    /// lifetimes, identifier types, the most names, and the leaf's key usages and CN.
    pub profiles: Profiles,
    pub terms_of_service: Option<String>,
    /// The CRL distribution point and nextUpdate (`[crl]`).
    pub crl: revocation::CrlSettings,
    /// Renewal windows and `Retry-After` for renewalInfo (`[renewal]`, RFC 9773).
    pub renewal: crate::policy::renewal::RenewalSettings,
    /// Whether CAA is checked before an authorization becomes valid (`acme.caa_check`).
    pub caa_check: bool,
    /// The issuer domain names CAA `issue` records must name (`acme.caa_identities`).
    pub caa_identities: Vec<String>,
    /// The base of every URL Mayfly hands out: CAA `accounturi` is compared with account
    /// URLs (RFC 8657 §3), and token audiences are URLs.
    pub base_url: String,
    /// Per-hour limits (`[rate_limits]`, issue 7).
    pub rate_limits: crate::config::RateLimitsConfig,
}

impl Settings {
    pub fn from_config(config: &Config) -> Self {
        Settings {
            claims: config.acme.claims.clone(),
            profiles: config.profiles.clone(),
            terms_of_service: config.acme.terms_of_service.clone(),
            crl: revocation::CrlSettings::from_config(config),
            renewal: config.renewal.clone(),
            caa_check: config.acme.caa_check,
            caa_identities: config.acme.caa_identities.clone(),
            base_url: config.base_url(),
            rate_limits: config.rate_limits.clone(),
        }
    }
}

/// Cheap to clone: every part is shared.
#[derive(Clone)]
pub struct Authority {
    store: Arc<dyn Store>,
    issuer: Arc<Issuer>,
    validator: Validator,
    clock: Arc<dyn Clock>,
    settings: Arc<Settings>,
    /// The latest CRL this replica signed.
    crls: Arc<revocation::CrlCache>,
    /// Per-provisioner policy: claims, profiles, validator chain, fixups, CAA.
    provisioners: Arc<Provisioners>,
    /// The queue to the audit log's writer task (issue 7).
    audit: audit::AuditLog,
}

impl Authority {
    pub fn new(
        store: Arc<dyn Store>,
        issuer: Arc<Issuer>,
        validator: Validator,
        clock: Arc<dyn Clock>,
        settings: Settings,
        provisioners: Arc<Provisioners>,
    ) -> Self {
        Authority {
            provisioners,
            audit: audit::AuditLog::spawn(store.clone()),
            store,
            issuer,
            validator,
            clock,
            settings: Arc::new(settings),
            crls: Arc::default(),
        }
    }

    /// The policy of the provisioner an account (or a token) belongs to.
    pub fn policy(&self, provisioner: &str) -> Arc<ProvisionerPolicy> {
        self.provisioners.policy(provisioner)
    }

    /// The URLs of an ACME provisioner's resources; the one place they are shaped is the
    /// API's URL builder.
    pub fn links(&self, provisioner: &str) -> crate::api::links::Links {
        let links = crate::api::links::Links::new(self.settings.base_url.clone());
        if provisioner == crate::provisioner::DEFAULT_ACME {
            links
        } else {
            links.for_provisioner(provisioner)
        }
    }

    pub fn provisioners(&self) -> &Provisioners {
        &self.provisioners
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// Records a nonce as used; `false` if it was used before, on any replica.
    pub async fn redeem_nonce(&self, nonce: &str, expires_at: OffsetDateTime) -> Result<bool> {
        Ok(self.store.redeem_nonce(nonce, expires_at).await?)
    }

    /// Forgets redeemed nonces that can no longer be presented.
    pub async fn prune_nonces(&self) -> Result<u64> {
        Ok(self.store.prune_nonces(self.now()).await?)
    }

    /// A secret shared by every replica through the database, created on first use.
    pub async fn shared_secret(&self, name: &str) -> Result<Vec<u8>> {
        let fresh = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        let stored = self.store.setting_or_insert(name, &fresh).await?;
        URL_SAFE_NO_PAD
            .decode(stored.as_bytes())
            .map_err(|e| Error::Store(StoreError::Other(format!("setting {name}: {e}").into())))
    }
}

/// Random bytes from the system's CSPRNG (aws-lc-rs).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // aws-lc-rs's SystemRandom does not fail on the platforms we build for; a failure here
    // would mean no entropy at all, and continuing would be worse than stopping.
    #[expect(clippy::expect_used, reason = "no entropy is not recoverable")]
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random number generator failed");
    bytes
}

/// A random, URL-safe identifier with 128 bits of entropy.
pub fn random_id() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<16>())
}

fn not_found(what: &str) -> Problem {
    Problem::not_found(format!("{what} does not exist"))
}

/// Maps `NotFound` to a 404 problem naming `what`, and keeps other errors.
fn found<T>(result: std::result::Result<T, StoreError>, what: &str) -> Result<T> {
    match result {
        Ok(value) => Ok(value),
        Err(StoreError::NotFound) => Err(not_found(what).into()),
        Err(e) => Err(e.into()),
    }
}
