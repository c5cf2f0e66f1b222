//! CSR parsing (RFC 2986) into the facts policy and finalize need.

use crate::acme::Identifier;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CsrError {
    #[error("the CSR is not valid DER: {0}")]
    Syntax(String),
    #[error("the CSR's signature does not verify")]
    BadSignature,
    #[error("{0}")]
    Unsupported(String),
}

/// A CSR whose signature verified.
#[derive(Clone, Debug)]
pub struct ParsedCsr {
    pub der: Vec<u8>,
    /// The subject's commonName, if any.
    pub common_name: Option<String>,
    /// dNSName and iPAddress SANs, normalised, in CSR order.
    pub san: Vec<Identifier>,
    /// The SubjectPublicKeyInfo, DER.
    pub spki_der: Vec<u8>,
}

impl ParsedCsr {
    pub fn from_der(_der: &[u8]) -> Result<Self, CsrError> {
        todo!("issuer helper")
    }

    /// The names the CSR asks for: the SANs plus the CN (if it is not among them).
    pub fn names(&self) -> Vec<Identifier> {
        todo!("issuer helper")
    }
}
