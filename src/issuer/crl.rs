//! Certificate revocation lists (RFC 5280 §5), signed by the intermediate that issued the
//! certificates they list. The issuer only signs: which certificates are listed, the CRL number
//! and the times come from the authority.

use rcgen::{
    CertificateRevocationListParams, KeyIdMethod, RevocationReason, RevokedCertParams, SerialNumber,
};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;

use super::{Issuer, IssuerError, sha256_hex, whole_seconds};

/// The CRL reason codes of RFC 5280 §5.3.1 that a subscriber may ask for. 7 is unassigned, and
/// 8 (removeFromCRL) only has a meaning in delta CRLs, which Mayfly does not publish.
pub const ALLOWED_REASONS: [u8; 9] = [0, 1, 2, 3, 4, 5, 6, 9, 10];

/// How many hex digits of the intermediate's SHA-256 fingerprint name its CRL: 64 bits tell
/// issuers apart and keep the URL short.
const NAME_HEX_DIGITS: usize = 16;

/// One revoked certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlEntry {
    /// Lower-case hex, as [`super::serial_hex`] prints it.
    pub serial: String,
    pub revoked_at: OffsetDateTime,
    /// One of [`ALLOWED_REASONS`].
    pub reason: u8,
}

/// What to sign.
#[derive(Clone, Debug)]
pub struct CrlRequest {
    /// RFC 5280 §5.2.3: monotonically increasing per issuer; positive.
    pub number: u64,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
    pub entries: Vec<CrlEntry>,
}

/// The rcgen reason for an RFC 5280 code, if it is one a subscriber may ask for.
pub fn revocation_reason(code: u8) -> Option<RevocationReason> {
    Some(match code {
        0 => RevocationReason::Unspecified,
        1 => RevocationReason::KeyCompromise,
        2 => RevocationReason::CaCompromise,
        3 => RevocationReason::AffiliationChanged,
        4 => RevocationReason::Superseded,
        5 => RevocationReason::CessationOfOperation,
        6 => RevocationReason::CertificateHold,
        9 => RevocationReason::PrivilegeWithdrawn,
        10 => RevocationReason::AaCompromise,
        _ => return None,
    })
}

impl Issuer {
    /// The name of this issuer's CRL, `GET /crl/<name>.crl`: the first 16 hex digits of the
    /// intermediate's SHA-256 fingerprint, so a new intermediate gets a new URL and certificates
    /// of the old one never point at a CRL it did not sign.
    pub fn crl_name(&self) -> String {
        let mut name = sha256_hex(&self.intermediate_der);
        name.truncate(NAME_HEX_DIGITS);
        name
    }

    /// Signs a CRL (DER) with the intermediate. The authority key identifier is the
    /// intermediate's subject key identifier, as in every leaf it signed (RFC 5280 §5.2.1).
    /// A reason of 0 (unspecified) is left out of the entry, as RFC 5280 §5.3.1 asks.
    pub fn sign_crl(&self, request: &CrlRequest) -> Result<Vec<u8>, IssuerError> {
        let revoked_certs = request
            .entries
            .iter()
            .map(|entry| {
                let reason = revocation_reason(entry.reason).ok_or_else(|| {
                    IssuerError::Request(format!(
                        "{} is not a revocation reason a CRL may carry",
                        entry.reason
                    ))
                })?;
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&serial_bytes(&entry.serial)?),
                    revocation_time: whole_seconds(entry.revoked_at)?,
                    reason_code: Some(reason),
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, IssuerError>>()?;
        let key_identifier_method = match self.intermediate_key_identifier() {
            Some(ski) => KeyIdMethod::PreSpecified(ski),
            None => KeyIdMethod::Sha256,
        };
        let params = CertificateRevocationListParams {
            this_update: whole_seconds(request.this_update)?,
            next_update: whole_seconds(request.next_update)?,
            crl_number: SerialNumber::from_slice(&request.number.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method,
        };
        let crl = params
            .signed_by(&self.signer)
            .map_err(|e| IssuerError::Crypto(format!("cannot sign the CRL: {e}")))?;
        Ok(crl.der().to_vec())
    }

    fn intermediate_key_identifier(&self) -> Option<Vec<u8>> {
        let (_, cert) = X509Certificate::from_der(&self.intermediate_der).ok()?;
        cert.extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(ski) => Some(ski.0.to_vec()),
                _ => None,
            })
    }
}

/// The big-endian bytes of a hex serial (odd lengths allowed: leading zero digits are trimmed).
fn serial_bytes(hex: &str) -> Result<Vec<u8>, IssuerError> {
    let bad = || IssuerError::Request(format!("{hex:?} is not a hex serial number"));
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let padded = if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else {
        hex.to_owned()
    };
    (0..padded.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&padded[i..i + 2], 16).map_err(|_| bad()))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use rcgen::{CertificateParams, KeyPair};
    use time::Duration;
    use x509_parser::extensions::{DistributionPointName, GeneralName};
    use x509_parser::revocation_list::CertificateRevocationList;

    use super::*;
    use crate::acme::Identifier;
    use crate::issuer::{CaOptions, IssuanceRequest, KeyType, init_ca, serial_hex};

    fn new_ca() -> (tempfile::TempDir, Issuer) {
        let dir = tempfile::tempdir().unwrap();
        let options = CaOptions {
            key_type: KeyType::P256,
            root_common_name: "CRL Test Root".into(),
            intermediate_common_name: "CRL Test Intermediate".into(),
            root_validity: Duration::days(3650),
            intermediate_validity: Duration::days(365),
        };
        init_ca(dir.path(), &options, None).unwrap();
        let issuer = Issuer::load(dir.path(), None).unwrap();
        (dir, issuer)
    }

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    fn intermediate(issuer: &Issuer) -> X509Certificate<'_> {
        X509Certificate::from_der(issuer.intermediate_der())
            .unwrap()
            .1
    }

    fn issue_leaf(issuer: &Issuer, crl_url: Option<&str>) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let csr = CertificateParams::new(vec!["leaf.example".to_owned()])
            .unwrap()
            .serialize_request(&key)
            .unwrap()
            .der()
            .to_vec();
        let now = OffsetDateTime::now_utc();
        let request = IssuanceRequest {
            csr_der: csr,
            identifiers: vec![Identifier::parse("dns", "leaf.example").unwrap()],
            emails: Vec::new(),
            not_before: now,
            not_after: now + Duration::hours(1),
            crl_url: crl_url.map(str::to_owned),
            ca_issuers_url: None,
            leaf: crate::issuer::LeafProfile::default(),
        };
        issuer
            .issue(issuer.prepare(request).unwrap())
            .unwrap()
            .leaf_der
    }

    fn distribution_points(der: &[u8]) -> Vec<String> {
        let (_, cert) = X509Certificate::from_der(der).unwrap();
        let mut uris = Vec::new();
        for extension in cert.extensions() {
            if let ParsedExtension::CRLDistributionPoints(points) = extension.parsed_extension() {
                for point in &points.points {
                    assert!(point.reasons.is_none() && point.crl_issuer.is_none());
                    if let Some(DistributionPointName::FullName(names)) = &point.distribution_point
                    {
                        for name in names {
                            if let GeneralName::URI(uri) = name {
                                uris.push((*uri).to_owned());
                            }
                        }
                    }
                }
            }
        }
        uris
    }

    #[test]
    fn leaves_carry_the_distribution_point_they_are_given() {
        let (_dir, issuer) = new_ca();
        let url = "http://127.0.0.1:14080/crl/0011223344556677.crl";
        assert_eq!(
            distribution_points(&issue_leaf(&issuer, Some(url))),
            vec![url.to_owned()]
        );
        assert!(distribution_points(&issue_leaf(&issuer, None)).is_empty());
    }

    #[test]
    fn crl_contents_and_signature() {
        let (_dir, issuer) = new_ca();
        let serials = ["4a0b0c0d0e0f10111213141516171819", "abc", "7f"];
        let request = CrlRequest {
            number: 300,
            this_update: at(1_800_000_000),
            next_update: at(1_800_086_400),
            entries: vec![
                CrlEntry {
                    serial: serials[0].into(),
                    revoked_at: at(1_799_999_000),
                    reason: 1,
                },
                CrlEntry {
                    serial: serials[1].into(),
                    revoked_at: at(1_799_999_100),
                    reason: 0,
                },
                CrlEntry {
                    serial: serials[2].into(),
                    revoked_at: at(1_799_999_200),
                    reason: 4,
                },
            ],
        };
        let der = issuer.sign_crl(&request).unwrap();
        let (rest, crl) = CertificateRevocationList::from_der(&der).unwrap();
        assert!(rest.is_empty());
        let intermediate = intermediate(&issuer);
        crl.verify_signature(intermediate.public_key()).unwrap();
        assert_eq!(crl.issuer(), intermediate.subject());
        assert_eq!(crl.last_update().to_datetime(), request.this_update);
        assert_eq!(
            crl.next_update().map(|t| t.to_datetime()),
            Some(request.next_update)
        );
        assert_eq!(crl.crl_number().map(|n| n.to_string()), Some("300".into()));

        let entries: Vec<(String, OffsetDateTime, Option<u8>)> = crl
            .iter_revoked_certificates()
            .map(|entry| {
                (
                    serial_hex(entry.raw_serial()),
                    entry.revocation_date.to_datetime(),
                    entry.reason_code().map(|(_, reason)| reason.0),
                )
            })
            .collect();
        assert_eq!(
            entries,
            vec![
                (serials[0].to_owned(), at(1_799_999_000), Some(1)),
                // RFC 5280 §5.3.1: no reasonCode rather than unspecified.
                (serials[1].to_owned(), at(1_799_999_100), None),
                (serials[2].to_owned(), at(1_799_999_200), Some(4)),
            ]
        );

        // The AKI is the intermediate's SKI.
        let ski = issuer.intermediate_key_identifier().unwrap();
        let aki = crl
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    aki.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(aki, ski);
    }

    #[test]
    fn empty_crl_and_refusals() {
        let (_dir, issuer) = new_ca();
        let request = CrlRequest {
            number: 1,
            this_update: at(1_800_000_000),
            next_update: at(1_800_003_600),
            entries: Vec::new(),
        };
        let der = issuer.sign_crl(&request).unwrap();
        let (_, crl) = CertificateRevocationList::from_der(&der).unwrap();
        assert_eq!(crl.iter_revoked_certificates().count(), 0);
        crl.verify_signature(intermediate(&issuer).public_key())
            .unwrap();

        for (name, entry) in [
            ("unassigned reason 7", ("ab", 7)),
            ("removeFromCRL", ("ab", 8)),
            ("not hex", ("xyz", 1)),
            ("empty serial", ("", 1)),
        ] {
            let bad = CrlRequest {
                entries: vec![CrlEntry {
                    serial: entry.0.into(),
                    revoked_at: at(1_799_999_000),
                    reason: entry.1,
                }],
                ..request.clone()
            };
            assert!(
                matches!(issuer.sign_crl(&bad), Err(IssuerError::Request(_))),
                "{name}"
            );
        }
        let stale = CrlRequest {
            next_update: request.this_update,
            ..request
        };
        assert!(issuer.sign_crl(&stale).is_err());
    }

    #[test]
    fn crl_name_is_stable_and_short() {
        let (dir, issuer) = new_ca();
        let again = Issuer::load(dir.path(), None).unwrap();
        assert_eq!(issuer.crl_name(), again.crl_name());
        assert_eq!(issuer.crl_name().len(), NAME_HEX_DIGITS);
        let (_other_dir, other) = new_ca();
        assert_ne!(issuer.crl_name(), other.crl_name());
    }

    /// `openssl crl -verify` accepts the CRL with the intermediate as the CA file (it needs
    /// only the issuer's key; the chain to the root is not checked for a CRL).
    #[test]
    fn openssl_verifies_the_crl() {
        if Command::new("openssl").arg("version").output().is_err() {
            eprintln!("skipped: openssl is not installed");
            return;
        }
        let (dir, issuer) = new_ca();
        let now = OffsetDateTime::now_utc();
        let request = CrlRequest {
            number: 7,
            this_update: now,
            next_update: now + Duration::hours(24),
            entries: vec![CrlEntry {
                serial: "4a0b".into(),
                revoked_at: now,
                reason: 1,
            }],
        };
        let crl_path = dir.path().join("test.crl");
        std::fs::write(&crl_path, issuer.sign_crl(&request).unwrap()).unwrap();
        let output = Command::new("openssl")
            .args(["crl", "-inform", "DER", "-noout", "-verify", "-text", "-in"])
            .arg(&crl_path)
            .arg("-CAfile")
            .arg(dir.path().join("intermediate-ca.pem"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}\n{stderr}");
        assert!(stderr.contains("verify OK"), "{stderr}");
        assert!(stdout.contains("4A0B"), "{stdout}");
        assert!(stdout.contains("Key Compromise"), "{stdout}");
    }
}
