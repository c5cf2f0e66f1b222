//! The certificate issuer: the CA hierarchy (root and intermediate), its keys (encrypted at rest
//! when a passphrase is given), the server's own HTTPS certificate, and leaf signing.
//!
//! Issuance is two-phase (ARCHITECTURE decision 7): `prepare` checks a request and yields a
//! `SigningToken`; `issue` consumes it and signs, so one request cannot be signed twice.
//! The issuer never touches storage.

pub mod csr;

use std::path::{Path, PathBuf};

use time::{Duration, OffsetDateTime};

use crate::acme::Identifier;

/// Key algorithm for CA keys.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    /// ECDSA P-256 with SHA-256 (the default).
    P256,
    /// ECDSA P-384 with SHA-384.
    P384,
    /// RSA 3072 with SHA-256 (PKCS#1 v1.5).
    Rsa3072,
}

/// What `init_ca` creates when the data directory has no CA yet.
#[derive(Clone, Debug)]
pub struct CaOptions {
    pub key_type: KeyType,
    pub root_common_name: String,
    pub intermediate_common_name: String,
    pub root_validity: Duration,
    pub intermediate_validity: Duration,
}

/// File names inside the data directory.
pub struct CaPaths {
    pub root_cert: PathBuf,
    pub root_key: PathBuf,
    pub intermediate_cert: PathBuf,
    pub intermediate_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl CaPaths {
    pub fn new(data_dir: &Path) -> Self {
        CaPaths {
            root_cert: data_dir.join("root-ca.pem"),
            root_key: data_dir.join("root-ca.key"),
            intermediate_cert: data_dir.join("intermediate-ca.pem"),
            intermediate_key: data_dir.join("intermediate-ca.key"),
            server_cert: data_dir.join("server.pem"),
            server_key: data_dir.join("server.key"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    #[error("the CA passphrase is wrong (or the key file {0} is corrupt)")]
    WrongPassphrase(PathBuf),
    #[error("the CA key {0} is encrypted; set MAYFLY_CA_PASSPHRASE")]
    PassphraseRequired(PathBuf),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{0}")]
    Crypto(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Whether `init_ca` created a new CA or found one.
#[derive(Debug, PartialEq, Eq)]
pub enum InitOutcome {
    Created,
    Existing,
}

/// A checked request to sign, produced by `Issuer::prepare`.
#[derive(Debug)]
pub struct IssuanceRequest {
    /// The CSR, DER; its signature has already been checked by `csr::ParsedCsr`.
    pub csr_der: Vec<u8>,
    /// The names to put in the subjectAltName, in this order. The first DNS name is the CN.
    pub identifiers: Vec<Identifier>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// Consumed by `Issuer::issue`: one prepared request is signed at most once.
#[derive(Debug)]
pub struct SigningToken {
    request: IssuanceRequest,
}

#[derive(Clone, Debug)]
pub struct IssuedCertificate {
    /// Lower-case hex of the serial number.
    pub serial: String,
    pub leaf_der: Vec<u8>,
    /// The leaf and then the intermediate, PEM (`application/pem-certificate-chain`).
    pub chain_pem: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// Creates the root and intermediate in `data_dir` if they are not there yet. With
/// `passphrase`, the private keys are stored encrypted (AES-256-GCM, Argon2id); without it,
/// in PKCS#8 PEM with mode 0600.
pub fn init_ca(
    _data_dir: &Path,
    _options: &CaOptions,
    _passphrase: Option<&str>,
) -> Result<InitOutcome, IssuerError> {
    todo!("issuer helper")
}

/// The loaded CA.
pub struct Issuer {}

impl Issuer {
    /// Loads the CA from `data_dir`, decrypting its keys with `passphrase` when they are
    /// encrypted.
    pub fn load(_data_dir: &Path, _passphrase: Option<&str>) -> Result<Self, IssuerError> {
        todo!("issuer helper")
    }

    pub fn root_pem(&self) -> &str {
        todo!("issuer helper")
    }

    /// Makes sure `data_dir` holds a server certificate for `hostnames` (plus localhost,
    /// 127.0.0.1 and ::1), signed by the intermediate and valid for at least a day more;
    /// reissues it otherwise. Returns (chain PEM, key PEM).
    pub fn ensure_server_certificate(
        &self,
        _data_dir: &Path,
        _hostnames: &[String],
        _now: OffsetDateTime,
    ) -> Result<(String, String), IssuerError> {
        todo!("issuer helper")
    }

    pub fn prepare(&self, request: IssuanceRequest) -> Result<SigningToken, IssuerError> {
        Ok(SigningToken { request })
    }

    pub fn issue(&self, _token: SigningToken) -> Result<IssuedCertificate, IssuerError> {
        todo!("issuer helper")
    }
}
