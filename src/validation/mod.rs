//! Challenge validation: stateless checks that take a challenge and return `Ok` or the
//! `Problem` that explains the failure. Nothing here touches storage (STYLE 8); the authority
//! records the outcome.

pub mod caa;
pub mod dns01;
pub mod http01;
pub mod resolver;
pub mod tls_alpn01;

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
    /// The port tls-alpn-01 connects to; 443 in production (RFC 8737 §3), another for tests.
    pub tls_alpn01_port: u16,
    /// An upper bound on one validation, connection and all redirects included.
    pub timeout: Duration,
    /// How many validations may be in flight at once.
    pub max_concurrent: usize,
}

/// Runs challenge checks with a bounded number in flight.
#[derive(Clone)]
pub struct Validator {
    http: reqwest::Client,
    tls: Arc<rustls::ClientConfig>,
    resolver: Arc<dyn Resolver>,
    settings: ValidationSettings,
    slots: Arc<Semaphore>,
}

/// The challenge types Mayfly offers, parsed (STYLE 6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChallengeType {
    Http01,
    Dns01,
    TlsAlpn01,
    /// RFC 9447: answered with a token from a provisioner, which the authority verifies; no
    /// network check.
    TkAuth01,
    Unknown(String),
}

/// Building a validator failed: the HTTP client or the TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the http-01 client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the tls-alpn-01 TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

impl ChallengeType {
    pub fn parse(text: &str) -> Self {
        match text {
            "http-01" => ChallengeType::Http01,
            "dns-01" => ChallengeType::Dns01,
            "tls-alpn-01" => ChallengeType::TlsAlpn01,
            "tkauth-01" => ChallengeType::TkAuth01,
            other => ChallengeType::Unknown(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ChallengeType::Http01 => "http-01",
            ChallengeType::Dns01 => "dns-01",
            ChallengeType::TlsAlpn01 => "tls-alpn-01",
            ChallengeType::TkAuth01 => "tkauth-01",
            ChallengeType::Unknown(other) => other,
        }
    }

    /// The challenges offered for an identifier, in the order they are listed:
    /// - a DNS name: all three;
    /// - a wildcard: dns-01 only (RFC 8555 §7.1.3: only the DNS proves control of a whole
    ///   zone; RFC 8737 §3 forbids tls-alpn-01 for wildcards);
    /// - an IP address: http-01 and tls-alpn-01 (RFC 8738 §7: no dns-01).
    pub fn offered_for(identifier: &Identifier) -> &'static [ChallengeType] {
        match identifier {
            Identifier::Dns(_) if identifier.is_wildcard() => &[ChallengeType::Dns01],
            Identifier::Dns(_) => &[
                ChallengeType::Http01,
                ChallengeType::Dns01,
                ChallengeType::TlsAlpn01,
            ],
            Identifier::Ip(_) => &[ChallengeType::Http01, ChallengeType::TlsAlpn01],
        }
    }
}

impl Validator {
    /// `resolver` answers every name lookup that validation makes.
    pub fn new(
        settings: ValidationSettings,
        resolver: Arc<dyn Resolver>,
    ) -> Result<Self, BuildError> {
        let http = http01::client(&settings, resolver.clone())?;
        Ok(Validator {
            http,
            tls: tls_alpn01::client_config()?,
            resolver,
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
                ChallengeType::Dns01 => {
                    dns01::validate(&*self.resolver, identifier, key_authorization).await
                }
                ChallengeType::TlsAlpn01 => {
                    tls_alpn01::validate(
                        &self.tls,
                        &*self.resolver,
                        self.settings.tls_alpn01_port,
                        identifier,
                        key_authorization,
                    )
                    .await
                }
                ChallengeType::TkAuth01 => Err(Problem::malformed(
                    "tkauth-01 is answered with a token, not validated over the network",
                )),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_per_identifier() {
        use ChallengeType::{Dns01, Http01, TlsAlpn01};
        let cases: [(&str, &str, &str, &[ChallengeType]); 5] = [
            (
                "DNS name",
                "dns",
                "www.example.com",
                &[Http01, Dns01, TlsAlpn01],
            ),
            ("wildcard", "dns", "*.example.com", &[Dns01]),
            ("IPv4", "ip", "192.0.2.1", &[Http01, TlsAlpn01]),
            ("IPv6", "ip", "2001:db8::1", &[Http01, TlsAlpn01]),
            (
                "single-label name",
                "dns",
                "localhost",
                &[Http01, Dns01, TlsAlpn01],
            ),
        ];
        for (case, kind, value, want) in cases {
            let id = Identifier::parse(kind, value).unwrap();
            assert_eq!(ChallengeType::offered_for(&id), want, "{case}");
        }
    }

    #[test]
    fn challenge_types_round_trip() {
        for text in ["http-01", "dns-01", "tls-alpn-01", "dns-account-01"] {
            assert_eq!(ChallengeType::parse(text).as_str(), text);
        }
        assert_eq!(
            ChallengeType::parse("dns-account-01"),
            ChallengeType::Unknown("dns-account-01".into())
        );
    }
}
