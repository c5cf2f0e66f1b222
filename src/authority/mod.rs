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
    /// How long a challenge POST waits for its validation (`validation.answer_within`).
    pub answer_within: std::time::Duration,
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
            answer_within: config.validation.answer_within.as_std(),
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

/// The base64url characters in ASCII order, so that ids compare as their times do.
const SORTABLE: &[u8; 64] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

/// A URL-safe row identifier: 7 characters of the creation time in milliseconds, then 16 of
/// randomness (96 bits). Ids made later sort after earlier ones, so new rows land on the last
/// pages of each index instead of on random ones, which keeps a large database's working set
/// small. The time is the system's, not the injected clock: it orders rows, it means nothing.
/// The first character is never `-`, so an id is never taken for an option on a command line.
pub fn random_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    time_ordered_id(millis, &random_bytes::<12>())
}

fn time_ordered_id(millis: u128, random: &[u8; 12]) -> String {
    // 42 bits of milliseconds reach the year 2109; from 1972 (2^36 ms) on, the leading digit is
    // not 0, whose character is `-`.
    let millis = millis.clamp(1 << 36, (1 << 42) - 1);
    let mut id = String::with_capacity(23);
    for shift in (0..7).rev() {
        id.push(SORTABLE[((millis >> (shift * 6)) & 63) as usize] as char);
    }
    id.push_str(&URL_SAFE_NO_PAD.encode(random));
    id
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

#[cfg(test)]
mod id_tests {
    use super::{SORTABLE, random_id, time_ordered_id};

    #[test]
    fn the_alphabet_is_base64url_in_ascii_order() {
        assert!(SORTABLE.windows(2).all(|w| w[0] < w[1]));
        let mut base64url: Vec<u8> =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".to_vec();
        base64url.sort_unstable();
        assert_eq!(base64url, SORTABLE);
    }

    #[test]
    fn ids_sort_by_time_then_randomness() {
        let earlier = time_ordered_id(1_764_000_000_000, &[0xff; 12]);
        let later = time_ordered_id(1_764_000_000_001, &[0; 12]);
        assert!(earlier < later, "{earlier} {later}");
        // Far apart in time, still ordered (each character is a 6-bit digit).
        let base = 1 << 36;
        assert!(time_ordered_id(base + 63, &[0; 12]) < time_ordered_id(base + 64, &[0; 12]));
        assert!(time_ordered_id(base, &[0; 12]) < time_ordered_id((1 << 42) - 1, &[0; 12]));
        assert_eq!(earlier.len(), 23);
        assert!(earlier.ends_with("________________"), "{earlier}");
    }

    #[test]
    fn no_id_starts_with_a_dash_even_for_a_clock_before_1972() {
        // clap takes `-P...` for an option: the admin CLI could not name such a row.
        for millis in [0, 1, 1 << 35, 1 << 36, 1_764_000_000_000, u128::MAX] {
            let id = time_ordered_id(millis, &[0xfb; 12]);
            assert!(!id.starts_with('-'), "{millis}: {id}");
        }
    }

    #[test]
    fn ids_are_url_safe_and_distinct() {
        let a = random_id();
        let b = random_id();
        assert_ne!(a, b);
        for id in [&a, &b] {
            assert_eq!(id.len(), 23);
            assert!(id.bytes().all(|c| SORTABLE.contains(&c)), "{id}");
            assert!(id.as_bytes()[0].is_ascii_alphanumeric(), "{id}");
        }
    }
}
