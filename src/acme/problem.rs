//! ACME problem documents (RFC 8555 §6.7, RFC 7807).
//!
//! The problem types form a closed enum; one `match` gives the URN suffix and the HTTP status.

use serde::{Deserialize, Serialize};

use super::Identifier;

/// The error types of RFC 8555 §6.7, in the order of the RFC's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemType {
    AccountDoesNotExist,
    /// RFC 9773 §5: the certificate named in `replaces` was already replaced.
    AlreadyReplaced,
    AlreadyRevoked,
    BadCsr,
    BadNonce,
    BadPublicKey,
    BadRevocationReason,
    BadSignatureAlgorithm,
    Caa,
    Compound,
    Connection,
    Dns,
    ExternalAccountRequired,
    IncorrectResponse,
    InvalidContact,
    /// draft-ietf-acme-profiles: the requested profile does not exist.
    InvalidProfile,
    Malformed,
    OrderNotReady,
    RateLimited,
    RejectedIdentifier,
    ServerInternal,
    Tls,
    Unauthorized,
    UnsupportedContact,
    UnsupportedIdentifier,
    UserActionRequired,
}

impl ProblemType {
    const ALL: [ProblemType; 26] = [
        Self::AccountDoesNotExist,
        Self::AlreadyReplaced,
        Self::AlreadyRevoked,
        Self::BadCsr,
        Self::BadNonce,
        Self::BadPublicKey,
        Self::BadRevocationReason,
        Self::BadSignatureAlgorithm,
        Self::Caa,
        Self::Compound,
        Self::Connection,
        Self::Dns,
        Self::ExternalAccountRequired,
        Self::IncorrectResponse,
        Self::InvalidContact,
        Self::InvalidProfile,
        Self::Malformed,
        Self::OrderNotReady,
        Self::RateLimited,
        Self::RejectedIdentifier,
        Self::ServerInternal,
        Self::Tls,
        Self::Unauthorized,
        Self::UnsupportedContact,
        Self::UnsupportedIdentifier,
        Self::UserActionRequired,
    ];

    /// The suffix after `urn:ietf:params:acme:error:` and the HTTP status code that goes with it.
    pub fn code_and_status(self) -> (&'static str, u16) {
        match self {
            Self::AccountDoesNotExist => ("accountDoesNotExist", 400),
            Self::AlreadyReplaced => ("alreadyReplaced", 409),
            Self::AlreadyRevoked => ("alreadyRevoked", 400),
            Self::BadCsr => ("badCSR", 400),
            Self::BadNonce => ("badNonce", 400),
            Self::BadPublicKey => ("badPublicKey", 400),
            Self::BadRevocationReason => ("badRevocationReason", 400),
            Self::BadSignatureAlgorithm => ("badSignatureAlgorithm", 400),
            Self::Caa => ("caa", 403),
            Self::Compound => ("compound", 403),
            Self::Connection => ("connection", 400),
            Self::Dns => ("dns", 400),
            Self::ExternalAccountRequired => ("externalAccountRequired", 403),
            Self::IncorrectResponse => ("incorrectResponse", 403),
            Self::InvalidContact => ("invalidContact", 400),
            Self::InvalidProfile => ("invalidProfile", 400),
            Self::Malformed => ("malformed", 400),
            Self::OrderNotReady => ("orderNotReady", 403),
            Self::RateLimited => ("rateLimited", 429),
            Self::RejectedIdentifier => ("rejectedIdentifier", 400),
            Self::ServerInternal => ("serverInternal", 500),
            Self::Tls => ("tls", 400),
            Self::Unauthorized => ("unauthorized", 403),
            Self::UnsupportedContact => ("unsupportedContact", 400),
            Self::UnsupportedIdentifier => ("unsupportedIdentifier", 400),
            Self::UserActionRequired => ("userActionRequired", 403),
        }
    }

    pub fn urn(self) -> String {
        format!("{}{}", URN_PREFIX, self.code_and_status().0)
    }

    pub fn from_urn(urn: &str) -> Option<Self> {
        let code = urn.strip_prefix(URN_PREFIX)?;
        Self::ALL
            .into_iter()
            .find(|t| t.code_and_status().0 == code)
    }
}

const URN_PREFIX: &str = "urn:ietf:params:acme:error:";

impl Serialize for ProblemType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.urn())
    }
}

impl<'de> Deserialize<'de> for ProblemType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let urn = String::deserialize(d)?;
        Self::from_urn(&urn)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown ACME problem type {urn}")))
    }
}

/// An RFC 7807 problem document as ACME uses it. Stored as JSON on challenges and orders.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: ProblemType,
    pub detail: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subproblems: Vec<Problem>,
    /// RFC 8555 §6.2: a `badSignatureAlgorithm` problem lists the algorithms the server
    /// accepts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub algorithms: Vec<String>,
    /// RFC 8555 §7.3.5: the `Location` of a conflicting account (key change). Not serialised.
    #[serde(skip)]
    pub location: Option<String>,
    /// Seconds a client should wait before retrying (rate limits). Not serialised.
    #[serde(skip)]
    pub retry_after: Option<u64>,
    /// `Link` headers to send with the problem, as (URL, rel); e.g. the terms of service
    /// with `userActionRequired` (RFC 8555 §7.3.3). Not serialised.
    #[serde(skip)]
    pub links: Vec<(String, String)>,
}

impl Problem {
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            status: kind.code_and_status().1,
            identifier: None,
            subproblems: Vec::new(),
            algorithms: Vec::new(),
            location: None,
            retry_after: None,
            links: Vec::new(),
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub fn with_link(mut self, url: impl Into<String>, rel: impl Into<String>) -> Self {
        self.links.push((url.into(), rel.into()));
        self
    }

    pub fn with_identifier(mut self, identifier: Identifier) -> Self {
        self.identifier = Some(identifier);
        self
    }

    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::Malformed, detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::Unauthorized, detail)
    }
    pub fn bad_nonce(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::BadNonce, detail)
    }
    pub fn bad_csr(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::BadCsr, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::Malformed, detail).with_status(404)
    }
    /// A 5xx problem. Its detail is generic on purpose: the cause goes to the log only.
    pub fn internal() -> Self {
        Self::new(
            ProblemType::ServerInternal,
            "the server met an internal error; the cause is in its log",
        )
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.code_and_status().0, self.detail)
    }
}

impl std::error::Error for Problem {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_its_urn() {
        for t in ProblemType::ALL {
            assert_eq!(ProblemType::from_urn(&t.urn()), Some(t));
        }
    }

    #[test]
    fn statuses_follow_the_rfc() {
        assert_eq!(ProblemType::BadNonce.code_and_status(), ("badNonce", 400));
        assert_eq!(
            ProblemType::Unauthorized.code_and_status(),
            ("unauthorized", 403)
        );
        assert_eq!(
            ProblemType::OrderNotReady.code_and_status(),
            ("orderNotReady", 403)
        );
        assert_eq!(
            ProblemType::RateLimited.code_and_status(),
            ("rateLimited", 429)
        );
    }

    #[test]
    fn serialises_as_rfc7807() {
        let p = Problem::bad_nonce("stale");
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "urn:ietf:params:acme:error:badNonce", "detail": "stale", "status": 400})
        );
    }
}
