//! JOSE for ACME (RFC 8555 §6.2, RFC 7515, RFC 7517, RFC 7638): flattened JWS parsing and
//! verification with aws-lc-rs, JWKs and their thumbprints, key authorizations.

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JoseError {
    /// Maps to `malformed`.
    #[error("{0}")]
    Malformed(String),
    /// Maps to `badSignatureAlgorithm`.
    #[error("{0}")]
    BadAlgorithm(String),
    /// Maps to `badPublicKey`.
    #[error("{0}")]
    BadKey(String),
    /// The signature did not verify. Maps to `malformed`.
    #[error("the JWS signature does not verify")]
    BadSignature,
}

/// A public key as a JWK (RFC 7517). Only the members the thumbprint covers are kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kty")]
pub enum Jwk {
    #[serde(rename = "EC")]
    Ec { crv: String, x: String, y: String },
    #[serde(rename = "RSA")]
    Rsa { n: String, e: String },
    #[serde(rename = "OKP")]
    Okp { crv: String, x: String },
}

/// The algorithms Mayfly accepts (RFC 8555 §6.2: no `none`, no MAC).
pub const ALGORITHMS: [&str; 4] = ["ES256", "ES384", "RS256", "EdDSA"];

impl Jwk {
    /// Checks the key itself: known curve, coordinates of the right length, RSA modulus of at
    /// least 2048 bits.
    pub fn validate(&self) -> Result<(), JoseError> {
        todo!("jose helper")
    }

    /// RFC 7638 thumbprint: base64url(SHA-256(canonical JSON)).
    pub fn thumbprint(&self) -> String {
        todo!("jose helper")
    }

    /// Verifies `signature` over `signing_input` with `alg`, which must suit the key.
    pub fn verify(&self, _alg: &str, _signing_input: &[u8], _signature: &[u8]) -> Result<(), JoseError> {
        todo!("jose helper")
    }

    /// The JWK of a SubjectPublicKeyInfo (DER), to compare a CSR key with account keys.
    pub fn from_spki(_spki_der: &[u8]) -> Result<Jwk, JoseError> {
        todo!("jose helper")
    }
}

/// The protected header of an ACME JWS (RFC 8555 §6.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtectedHeader {
    pub alg: String,
    /// Exactly one of `jwk` and `kid` is set.
    pub key: KeyOrKeyId,
    pub nonce: Option<String>,
    pub url: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyOrKeyId {
    Jwk(Jwk),
    KeyId(String),
}

/// A flattened JWS whose structure parsed; its signature is not checked yet.
#[derive(Clone, Debug)]
pub struct ParsedJws {
    pub header: ProtectedHeader,
    /// The decoded payload; empty for POST-as-GET.
    pub payload: Vec<u8>,
    /// `protected || '.' || payload`, as signed.
    pub signing_input: Vec<u8>,
    pub signature: Vec<u8>,
}

impl ParsedJws {
    /// Parses a flattened JSON JWS. Refuses the general serialisation (`signatures`), an
    /// unprotected `header`, an unknown `crit`, `alg` outside `ALGORITHMS` and a header with
    /// both or neither of `jwk` and `kid`.
    pub fn parse(_body: &[u8]) -> Result<Self, JoseError> {
        todo!("jose helper")
    }

    pub fn verify(&self, key: &Jwk) -> Result<(), JoseError> {
        key.verify(&self.header.alg, &self.signing_input, &self.signature)
    }
}

/// RFC 8555 §8.1: `token || '.' || base64url(thumbprint(accountKey))`.
pub fn key_authorization(token: &str, account_key: &Jwk) -> String {
    format!("{token}.{}", account_key.thumbprint())
}
