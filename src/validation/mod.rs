//! Challenge validation: stateless checks that take a challenge and return `Ok` or the
//! `Problem` that explains the failure. Nothing here touches storage (STYLE 8); the authority
//! records the outcome.

pub mod caa;
pub mod http01;
pub mod resolver;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::acme::{Identifier, Problem};
pub use resolver::{DnsError, FakeResolver, HickoryResolver, Resolver};

/// Settings the validators need, taken from `[validation]`.
#[derive(Clone, Debug)]
pub struct ValidationSettings {
    /// The port http-01 connects to; 80 in production (RFC 8555 §8.3), another for tests.
    pub http01_port: u16,
    /// An upper bound on one validation, connection and all redirects included.
    pub timeout: Duration,
    /// How many validations may be in flight at once.
    pub max_concurrent: usize,
}

/// Runs challenge checks with a bounded number in flight.
#[derive(Clone)]
pub struct Validator {
    http: reqwest::Client,
    settings: ValidationSettings,
    slots: Arc<Semaphore>,
}

/// The challenge types Mayfly offers, parsed (STYLE 6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChallengeType {
    Http01,
    Unknown(String),
}

impl ChallengeType {
    pub fn parse(text: &str) -> Self {
        match text {
            "http-01" => ChallengeType::Http01,
            other => ChallengeType::Unknown(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ChallengeType::Http01 => "http-01",
            ChallengeType::Unknown(other) => other,
        }
    }
}

impl Validator {
    /// `resolver` answers every name lookup that validation makes.
    pub fn new(
        settings: ValidationSettings,
        resolver: Arc<dyn Resolver>,
    ) -> Result<Self, reqwest::Error> {
        let http = http01::client(&settings, resolver)?;
        Ok(Validator {
            http,
            slots: Arc::new(Semaphore::new(settings.max_concurrent.max(1))),
            settings,
        })
    }

    /// Checks one challenge. Waits for a free slot first, so a burst of challenges cannot
    /// open unbounded connections.
    pub async fn validate(
        &self,
        kind: &ChallengeType,
        identifier: &Identifier,
        token: &str,
        key_authorization: &str,
    ) -> Result<(), Problem> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| Problem::internal())?;
        let check = async {
            match kind {
                ChallengeType::Http01 => {
                    http01::validate(
                        &self.http,
                        self.settings.http01_port,
                        identifier,
                        token,
                        key_authorization,
                    )
                    .await
                }
                ChallengeType::Unknown(other) => Err(Problem::malformed(format!(
                    "challenge type {other} is not supported"
                ))),
            }
        };
        match tokio::time::timeout(self.settings.timeout, check).await {
            Ok(result) => result.map_err(|p| p.with_identifier(identifier.clone())),
            Err(_) => Err(Problem::new(
                crate::acme::ProblemType::Connection,
                format!(
                    "validation of {identifier} did not finish within {} s",
                    self.settings.timeout.as_secs()
                ),
            )
            .with_identifier(identifier.clone())),
        }
    }
}
