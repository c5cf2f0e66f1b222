//! The certificate issuer: the CA hierarchy (root and intermediate), its keys (encrypted at rest
//! when a passphrase is given), the server's own HTTPS certificate, and leaf signing.
//!
//! Issuance is two-phase (ARCHITECTURE decision 7): `prepare` checks a request and yields a
//! `SigningToken`; `issue` consumes it and signs, so one request cannot be signed twice.
//! The issuer never touches storage.

pub mod admin;
pub mod crl;
pub mod csr;
pub mod reissue;

mod ca;
mod keystore;
mod leaf;

use std::path::{Path, PathBuf};

use rcgen::KeyPair;
use time::{Duration, OffsetDateTime, UtcOffset};
use x509_parser::certificate::X509Certificate;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;

use crate::acme::Identifier;
use crate::policy::Profile;
use crate::policy::validators::{KeyUsageBit, Purpose};

pub use ca::serial_hex;

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
    /// The request cannot be signed as given (no identifiers, an empty validity window, a public
    /// key type the signer does not support, a hostname that is not a name).
    #[error("{0}")]
    Request(String),
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
    /// The names to put in the subjectAltName, exactly as authorized, in this order.
    pub identifiers: Vec<Identifier>,
    /// rfc822Name entries to put in the subjectAltName after the identifiers, as authorized
    /// (only the direct API issues them; ACME orders have none).
    pub emails: Vec<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// The CRL distribution point (RFC 5280 §4.2.1.13) to put in the leaf, an http:// URL.
    pub crl_url: Option<String>,
    /// The authorityInfoAccess caIssuers URL (RFC 5280 §4.2.2.1): where the intermediate can
    /// be fetched, an http:// URL.
    pub ca_issuers_url: Option<String>,
    /// Key usages and the common name, from the order's profile and the request's template.
    pub leaf: LeafProfile,
}

/// The subject commonName of a leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeafCommonName {
    /// No subject at all (the names are in the subjectAltName).
    None,
    /// The first DNS identifier.
    FirstDnsName,
    /// This name, which the caller has checked is one of the identifiers.
    Given(String),
}

/// What goes into a leaf besides its names and validity. A common name longer than 64
/// characters is left out (RFC 5280 `ub-common-name`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafProfile {
    /// keyUsage (RFC 5280 §4.2.1.3). RSA subject keys also get keyEncipherment, listed or
    /// not, because TLS 1.2 RSA key exchange needs it. keyCertSign and cRLSign are refused.
    pub key_usage: Vec<KeyUsageBit>,
    /// extendedKeyUsage (RFC 5280 §4.2.1.12). OCSPSigning and anyExtendedKeyUsage are refused.
    pub extended_key_usage: Vec<Purpose>,
    pub common_name: LeafCommonName,
}

impl Default for LeafProfile {
    /// A TLS server certificate with a CN: the built-in `hours` profile, and the server's own
    /// certificate.
    fn default() -> Self {
        LeafProfile {
            key_usage: vec![KeyUsageBit::DigitalSignature],
            extended_key_usage: vec![Purpose::ServerAuth],
            common_name: LeafCommonName::FirstDnsName,
        }
    }
}

impl From<&Profile> for LeafProfile {
    fn from(profile: &Profile) -> Self {
        LeafProfile {
            key_usage: profile.key_usage.iter().map(|&u| u.into()).collect(),
            extended_key_usage: profile
                .extended_key_usage
                .iter()
                .map(|&u| u.into())
                .collect(),
            common_name: if profile.include_common_name {
                LeafCommonName::FirstDnsName
            } else {
                LeafCommonName::None
            },
        }
    }
}

/// Consumed by `Issuer::issue`: one prepared request is signed at most once.
#[derive(Debug)]
pub struct SigningToken {
    request: IssuanceRequest,
    /// The CSR's public key, parsed once by `prepare`.
    subject: leaf::SubjectKey,
}

#[derive(Clone, Debug)]
pub struct IssuedCertificate {
    /// Lower-case hex of the serial number, as [`serial_hex`] prints it: 32 digits, no
    /// separators (Mayfly's serials are 16 bytes and never start with a zero digit).
    pub serial: String,
    pub leaf_der: Vec<u8>,
    /// The leaf and then the intermediate, PEM (`application/pem-certificate-chain`).
    pub chain_pem: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// Creates the root and intermediate in `data_dir` if they are not there yet. With
/// `passphrase`, the private keys are stored encrypted (AES-256-GCM, Argon2id); without it,
/// in PKCS#8 PEM with mode 0600. An empty passphrase counts as none.
///
/// If `root-ca.pem` and `root-ca.key` both exist, nothing is touched and the result is
/// [`InitOutcome::Existing`]. If only the certificate exists, this is an error: a root that
/// clients may already trust is never replaced.
pub fn init_ca(
    data_dir: &Path,
    options: &CaOptions,
    passphrase: Option<&str>,
) -> Result<InitOutcome, IssuerError> {
    ca::init(
        data_dir,
        options,
        non_empty(passphrase),
        OffsetDateTime::now_utc(),
    )
}

/// The loaded CA. Only the intermediate's private key is held in memory: the root key stays on
/// disk, since nothing but creating the CA needs it.
pub struct Issuer {
    root_pem: String,
    root_fingerprint: String,
    intermediate_pem: String,
    intermediate_der: Vec<u8>,
    /// No leaf may outlive the certificate that vouches for it.
    intermediate_not_after: OffsetDateTime,
    /// The intermediate's subject, key identifier and parsed signing key, ready for `issue`.
    signer: rcgen::Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("root_fingerprint", &self.root_fingerprint)
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// Loads the CA from `data_dir`, decrypting its keys with `passphrase` when they are
    /// encrypted.
    ///
    /// Checks that the intermediate is signed by the root and that the intermediate's key
    /// matches its certificate.
    pub fn load(data_dir: &Path, passphrase: Option<&str>) -> Result<Self, IssuerError> {
        let paths = CaPaths::new(data_dir);
        let root_pem = keystore::read_text(&paths.root_cert)?;
        let root_der = single_certificate(&paths.root_cert, &root_pem)?;
        let intermediate_pem = keystore::read_text(&paths.intermediate_cert)?;
        let intermediate_der = single_certificate(&paths.intermediate_cert, &intermediate_pem)?;
        let key = keystore::read_key(&paths.intermediate_key, non_empty(passphrase))?;

        let root = parse_certificate(&paths.root_cert, &root_der)?;
        let intermediate = parse_certificate(&paths.intermediate_cert, &intermediate_der)?;
        intermediate
            .verify_signature(Some(root.public_key()))
            .map_err(|_| {
                keystore::file_error(
                    &paths.intermediate_cert,
                    "is not signed by the root in root-ca.pem",
                )
            })?;
        if rcgen::PublicKeyData::der_bytes(&key)
            != intermediate.public_key().subject_public_key.data.as_ref()
        {
            return Err(keystore::file_error(
                &paths.intermediate_key,
                "does not match the public key in intermediate-ca.pem",
            ));
        }
        let intermediate_not_after = intermediate.validity().not_after.to_datetime();
        let signer = rcgen::Issuer::from_ca_cert_der(&intermediate_der.as_slice().into(), key)
            .map_err(|e| keystore::file_error(&paths.intermediate_cert, e.to_string()))?;
        Ok(Issuer {
            root_fingerprint: sha256_hex(&root_der),
            root_pem,
            intermediate_pem,
            intermediate_der,
            intermediate_not_after,
            signer,
        })
    }

    /// The root certificate, PEM: the file clients trust.
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// The intermediate certificate, PEM: the second element of every chain.
    pub fn intermediate_pem(&self) -> &str {
        &self.intermediate_pem
    }

    /// The intermediate certificate, DER (the issuer of every leaf, e.g. for CRLs or OCSP, and
    /// what the caIssuers URL serves).
    pub fn intermediate_der(&self) -> &[u8] {
        &self.intermediate_der
    }

    /// When the intermediate expires; `prepare` refuses leaves that would outlive it.
    pub fn intermediate_not_after(&self) -> OffsetDateTime {
        self.intermediate_not_after
    }

    /// SHA-256 of the root certificate's DER, lower-case hex without separators, so an operator
    /// can compare the root a client trusts with the one this CA uses.
    pub fn root_fingerprint(&self) -> &str {
        &self.root_fingerprint
    }

    /// Makes sure `data_dir` holds a server certificate for `hostnames` (plus localhost,
    /// 127.0.0.1 and ::1), signed by the intermediate and valid for at least a day more;
    /// reissues it otherwise. Returns (chain PEM, key PEM).
    pub fn ensure_server_certificate(
        &self,
        data_dir: &Path,
        hostnames: &[String],
        now: OffsetDateTime,
    ) -> Result<(String, String), IssuerError> {
        let paths = CaPaths::new(data_dir);
        let wanted = leaf::server_identifiers(hostnames)?;
        match self.reusable_server_certificate(&paths, &wanted, now) {
            Ok(existing) => return Ok(existing),
            Err(reason) => tracing::info!(%reason, "issuing a new server certificate"),
        }
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| IssuerError::Crypto(format!("key generation failed: {e}")))?;
        let cert = leaf::server_params(&wanted, now)?
            .signed_by(&key, &self.signer)
            .map_err(|e| IssuerError::Crypto(format!("cannot sign: {e}")))?;
        let chain = format!("{}{}", cert.pem(), self.intermediate_pem);
        let key_pem = key.serialize_pem();
        // The key first: a crash in between leaves a certificate that does not match its key,
        // which the next start detects and replaces.
        keystore::write_atomic(&paths.server_key, key_pem.as_bytes(), keystore::KEY_MODE)?;
        keystore::write_atomic(&paths.server_cert, chain.as_bytes(), keystore::CERT_MODE)?;
        Ok((chain, key_pem))
    }

    /// The stored server certificate and key if they can serve as they are, else why not.
    fn reusable_server_certificate(
        &self,
        paths: &CaPaths,
        wanted: &[Identifier],
        now: OffsetDateTime,
    ) -> Result<(String, String), String> {
        let chain = std::fs::read_to_string(&paths.server_cert)
            .map_err(|e| format!("{}: {e}", paths.server_cert.display()))?;
        let key_pem = std::fs::read_to_string(&paths.server_key)
            .map_err(|e| format!("{}: {e}", paths.server_key.display()))?;
        let leaf_der = Pem::iter_from_buffer(chain.as_bytes())
            .next()
            .and_then(Result::ok)
            .map(|pem| pem.contents)
            .ok_or("server.pem holds no certificate")?;
        let (_, leaf) =
            X509Certificate::from_der(&leaf_der).map_err(|e| format!("server.pem: {e}"))?;
        let (_, intermediate) = X509Certificate::from_der(&self.intermediate_der)
            .map_err(|e| format!("intermediate: {e}"))?;
        leaf.verify_signature(Some(intermediate.public_key()))
            .map_err(|_| "server.pem is not signed by the current intermediate")?;
        if leaf.validity().not_after.to_datetime() < now + leaf::SERVER_MIN_REMAINING {
            return Err("server.pem expires within a day".to_owned());
        }
        if leaf.validity().not_before.to_datetime() > now {
            return Err("server.pem is not valid yet".to_owned());
        }
        let covered = certificate_identifiers(&leaf);
        if let Some(missing) = wanted.iter().find(|id| !covered.contains(id)) {
            return Err(format!("server.pem does not cover {missing}"));
        }
        let key = KeyPair::from_pem(&key_pem).map_err(|e| format!("server.key: {e}"))?;
        if rcgen::PublicKeyData::der_bytes(&key)
            != leaf.public_key().subject_public_key.data.as_ref()
        {
            return Err("server.key does not match server.pem".to_owned());
        }
        Ok((chain, key_pem))
    }

    /// Checks a request and seals it into a token. Cheap: it parses the CSR's public key (whose
    /// signature `csr::ParsedCsr` has already checked) but signs nothing.
    pub fn prepare(&self, request: IssuanceRequest) -> Result<SigningToken, IssuerError> {
        let (_, csr) = X509CertificationRequest::from_der(&request.csr_der)
            .map_err(|e| IssuerError::Request(format!("the CSR does not parse: {e}")))?;
        let spki_der = csr.certification_request_info.subject_pki.raw.to_vec();
        self.prepare_for_key(request, &spki_der)
    }

    /// As [`Self::prepare`], for the public key `spki_der` (a SubjectPublicKeyInfo, DER) rather
    /// than the CSR's: a renewal that keeps the certificate's key has no CSR, and
    /// `request.csr_der` is then left empty.
    pub fn prepare_for_key(
        &self,
        request: IssuanceRequest,
        spki_der: &[u8],
    ) -> Result<SigningToken, IssuerError> {
        if request.identifiers.is_empty() && request.emails.is_empty() {
            return Err(IssuerError::Request(
                "a certificate needs at least one identifier".to_owned(),
            ));
        }
        if whole_seconds(request.not_after)? <= whole_seconds(request.not_before)? {
            return Err(IssuerError::Request(
                "notAfter must be later than notBefore".to_owned(),
            ));
        }
        if request.not_after > self.intermediate_not_after {
            return Err(IssuerError::Request(format!(
                "notAfter {} is later than the intermediate's notAfter {}",
                request.not_after, self.intermediate_not_after
            )));
        }
        leaf::check_usages(&request.leaf)?;
        let subject = leaf::SubjectKey::from_spki_der(spki_der)?;
        Ok(SigningToken { request, subject })
    }

    /// Signs a prepared request with the intermediate.
    ///
    /// The leaf: subject CN as the [`LeafProfile`] says, if it has at most 64 characters
    /// (nothing else from the CSR's subject); SANs = the identifiers in order, then the email
    /// addresses; the CSR's public
    /// key; notBefore/notAfter as requested, truncated to whole seconds; a random 16-byte
    /// serial; KU and EKU as the `LeafProfile` says (plus keyEncipherment for RSA keys);
    /// basicConstraints CA:false (critical); AKI = the intermediate's SKI; an SKI; the CRL
    /// distribution point and the authorityInfoAccess caIssuers URL when the request names
    /// them.
    pub fn issue(&self, token: SigningToken) -> Result<IssuedCertificate, IssuerError> {
        let SigningToken { request, subject } = token;
        let not_before = whole_seconds(request.not_before)?;
        let not_after = whole_seconds(request.not_after)?;
        let mut params = leaf::leaf_params(
            &request.identifiers,
            &request.emails,
            not_before,
            not_after,
            subject.is_rsa,
            &request.leaf,
        )?;
        if let Some(url) = request.crl_url {
            leaf::add_crl_distribution_point(&mut params, url);
        }
        if let Some(url) = &request.ca_issuers_url {
            leaf::add_ca_issuers(&mut params, url);
        }
        let serial = params
            .serial_number
            .as_ref()
            .map(|serial| serial_hex(&serial.to_bytes()))
            .ok_or_else(|| IssuerError::Crypto("the leaf has no serial".to_owned()))?;
        let cert = params
            .signed_by(&subject.spki, &self.signer)
            .map_err(|e| IssuerError::Crypto(format!("cannot sign: {e}")))?;
        Ok(IssuedCertificate {
            serial,
            chain_pem: format!("{}{}", cert.pem(), self.intermediate_pem),
            leaf_der: cert.der().to_vec(),
            not_before,
            not_after,
        })
    }
}

/// X.509 times have a resolution of one second; the times reported for a certificate must be
/// the ones written into it.
fn whole_seconds(time: OffsetDateTime) -> Result<OffsetDateTime, IssuerError> {
    OffsetDateTime::from_unix_timestamp(time.unix_timestamp())
        .map(|t| t.to_offset(UtcOffset::UTC))
        .map_err(|e| IssuerError::Request(format!("time out of range: {e}")))
}

fn non_empty(passphrase: Option<&str>) -> Option<&str> {
    passphrase.filter(|p| !p.is_empty())
}

/// The DER of the one certificate in a PEM file.
fn single_certificate(path: &Path, pem_text: &str) -> Result<Vec<u8>, IssuerError> {
    let mut pems = Pem::iter_from_buffer(pem_text.as_bytes());
    let pem = match pems.next() {
        Some(Ok(pem)) if pem.label == "CERTIFICATE" => pem,
        Some(Ok(pem)) => {
            return Err(keystore::file_error(
                path,
                format!("holds a {:?} block, not a CERTIFICATE", pem.label),
            ));
        }
        Some(Err(e)) => return Err(keystore::file_error(path, format!("bad PEM: {e}"))),
        None => return Err(keystore::file_error(path, "holds no certificate")),
    };
    Ok(pem.contents)
}

fn parse_certificate<'a>(path: &Path, der: &'a [u8]) -> Result<X509Certificate<'a>, IssuerError> {
    X509Certificate::from_der(der)
        .map(|(_, cert)| cert)
        .map_err(|e| keystore::file_error(path, format!("not a certificate: {e}")))
}

/// The DNS and IP subjectAltNames of a certificate, as identifiers; other entries are skipped.
fn certificate_identifiers(cert: &X509Certificate<'_>) -> Vec<Identifier> {
    use x509_parser::extensions::GeneralName;
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Identifier::parse("dns", dns).ok(),
            GeneralName::IPAddress(bytes) => ip_from_bytes(bytes).map(Identifier::Ip),
            _ => None,
        })
        .collect()
}

fn ip_from_bytes(bytes: &[u8]) -> Option<std::net::IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Some(v4.into());
    }
    <[u8; 16]>::try_from(bytes).ok().map(Into::into)
}

fn sha256_hex(data: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests;
