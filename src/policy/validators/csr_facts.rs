//! The facts about a CSR that the CSR-stage rules read and `ParsedCsr` does not keep:
//! requested extensions, keyUsage, extendedKeyUsage, basicConstraints and the public key's
//! type, size and parameters (RFC 2986, RFC 5280 §4.2, RFC 3279, RFC 5480, RFC 8410).

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::matching::serde_via_str;

/// keyUsage bits (RFC 5280 §4.2.1.3), in bit order. Configuration accepts the RFC names
/// (`digitalSignature`) and Anchor's long names (`Digital Signature`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyUsageBit {
    DigitalSignature,
    /// Also called contentCommitment.
    NonRepudiation,
    KeyEncipherment,
    DataEncipherment,
    KeyAgreement,
    KeyCertSign,
    CrlSign,
    EncipherOnly,
    DecipherOnly,
}

impl KeyUsageBit {
    pub const ALL: [KeyUsageBit; 9] = [
        Self::DigitalSignature,
        Self::NonRepudiation,
        Self::KeyEncipherment,
        Self::DataEncipherment,
        Self::KeyAgreement,
        Self::KeyCertSign,
        Self::CrlSign,
        Self::EncipherOnly,
        Self::DecipherOnly,
    ];

    /// The RFC 5280 name and Anchor's long name.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Self::DigitalSignature => ("digitalSignature", "Digital Signature"),
            Self::NonRepudiation => ("nonRepudiation", "Non Repudiation"),
            Self::KeyEncipherment => ("keyEncipherment", "Key Encipherment"),
            Self::DataEncipherment => ("dataEncipherment", "Data Encipherment"),
            Self::KeyAgreement => ("keyAgreement", "Key Agreement"),
            Self::KeyCertSign => ("keyCertSign", "Certificate Sign"),
            Self::CrlSign => ("cRLSign", "CRL Sign"),
            Self::EncipherOnly => ("encipherOnly", "Encipher Only"),
            Self::DecipherOnly => ("decipherOnly", "Decipher Only"),
        }
    }

    /// The bits set in a keyUsage flags value (bit 0 is digitalSignature).
    pub fn from_flags(flags: u16) -> Vec<KeyUsageBit> {
        Self::ALL
            .into_iter()
            .enumerate()
            .filter(|(i, _)| flags & (1 << i) != 0)
            .map(|(_, bit)| bit)
            .collect()
    }
}

impl std::fmt::Display for KeyUsageBit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.names().0)
    }
}

impl std::str::FromStr for KeyUsageBit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "contentCommitment" {
            return Ok(Self::NonRepudiation);
        }
        Self::ALL
            .into_iter()
            .find(|bit| {
                let (short, long) = bit.names();
                s == short || s == long
            })
            .ok_or_else(|| {
                format!(
                    "{s:?} is not a key usage; the key usages are {}",
                    Self::ALL.map(|b| b.names().0).join(", ")
                )
            })
    }
}

/// extendedKeyUsage purposes (RFC 5280 §4.2.1.12); others by OID.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Purpose {
    ServerAuth,
    ClientAuth,
    CodeSigning,
    EmailProtection,
    TimeStamping,
    OcspSigning,
    Any,
    Other(String),
}

impl Purpose {
    /// The purposes an extendedKeyUsage extension (of a CSR or a certificate) lists.
    pub fn from_extension(usage: &x509_parser::extensions::ExtendedKeyUsage<'_>) -> Vec<Purpose> {
        let mut purposes = Vec::new();
        for (set, purpose) in [
            (usage.any, Purpose::Any),
            (usage.server_auth, Purpose::ServerAuth),
            (usage.client_auth, Purpose::ClientAuth),
            (usage.code_signing, Purpose::CodeSigning),
            (usage.email_protection, Purpose::EmailProtection),
            (usage.time_stamping, Purpose::TimeStamping),
            (usage.ocsp_signing, Purpose::OcspSigning),
        ] {
            if set {
                purposes.push(purpose);
            }
        }
        purposes.extend(
            usage
                .other
                .iter()
                .map(|oid| Purpose::Other(oid.to_id_string())),
        );
        purposes
    }

    const NAMED: [(Purpose, &'static str); 7] = [
        (Purpose::ServerAuth, "serverAuth"),
        (Purpose::ClientAuth, "clientAuth"),
        (Purpose::CodeSigning, "codeSigning"),
        (Purpose::EmailProtection, "emailProtection"),
        (Purpose::TimeStamping, "timeStamping"),
        (Purpose::OcspSigning, "OCSPSigning"),
        (Purpose::Any, "anyExtendedKeyUsage"),
    ];
}

impl From<crate::policy::ExtendedKeyUsage> for Purpose {
    fn from(usage: crate::policy::ExtendedKeyUsage) -> Self {
        match usage {
            crate::policy::ExtendedKeyUsage::ServerAuth => Purpose::ServerAuth,
            crate::policy::ExtendedKeyUsage::ClientAuth => Purpose::ClientAuth,
        }
    }
}

impl From<crate::policy::KeyUsage> for KeyUsageBit {
    fn from(usage: crate::policy::KeyUsage) -> Self {
        match usage {
            crate::policy::KeyUsage::DigitalSignature => KeyUsageBit::DigitalSignature,
            crate::policy::KeyUsage::KeyEncipherment => KeyUsageBit::KeyEncipherment,
            crate::policy::KeyUsage::KeyAgreement => KeyUsageBit::KeyAgreement,
        }
    }
}

impl std::fmt::Display for Purpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Purpose::Other(oid) = self {
            return f.write_str(oid);
        }
        let name = Self::NAMED
            .iter()
            .find(|(p, _)| p == self)
            .map_or("?", |(_, n)| n);
        f.write_str(name)
    }
}

impl std::str::FromStr for Purpose {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some((purpose, _)) = Self::NAMED.iter().find(|(_, n)| *n == s) {
            return Ok(purpose.clone());
        }
        if is_dotted_oid(s) {
            return Ok(Purpose::Other(s.to_owned()));
        }
        Err(format!(
            "{s:?} is neither an extended key usage name ({}) nor an OID",
            Self::NAMED.map(|(_, n)| n).join(", ")
        ))
    }
}

/// Extension OIDs by their RFC 5280 (and neighbouring RFCs') names.
pub const EXTENSION_NAMES: [(&str, &str); 13] = [
    ("subjectAltName", "2.5.29.17"),
    ("keyUsage", "2.5.29.15"),
    ("extendedKeyUsage", "2.5.29.37"),
    ("basicConstraints", "2.5.29.19"),
    ("subjectKeyIdentifier", "2.5.29.14"),
    ("authorityKeyIdentifier", "2.5.29.35"),
    ("nameConstraints", "2.5.29.30"),
    ("certificatePolicies", "2.5.29.32"),
    ("policyConstraints", "2.5.29.36"),
    ("cRLDistributionPoints", "2.5.29.31"),
    ("authorityInfoAccess", "1.3.6.1.5.5.7.1.1"),
    ("subjectInfoAccess", "1.3.6.1.5.5.7.1.11"),
    // RFC 7633: OCSP must-staple.
    ("tlsFeature", "1.3.6.1.5.5.7.1.24"),
];

pub(crate) const SUBJECT_ALT_NAME: &str = "2.5.29.17";
pub(crate) const KEY_USAGE: &str = "2.5.29.15";
pub(crate) const BASIC_CONSTRAINTS: &str = "2.5.29.19";

/// The name of a known extension OID.
pub fn extension_name(oid: &str) -> Option<&'static str> {
    EXTENSION_NAMES
        .iter()
        .find(|(_, o)| *o == oid)
        .map(|(n, _)| *n)
}

/// An extension in configuration: a name from [`EXTENSION_NAMES`] or a dotted OID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionId {
    pub oid: String,
    /// As configured, for messages.
    pub written: String,
}

impl std::str::FromStr for ExtensionId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let oid = match EXTENSION_NAMES.iter().find(|(n, _)| *n == s) {
            Some((_, oid)) => (*oid).to_owned(),
            None if is_dotted_oid(s) => s.to_owned(),
            None => {
                return Err(format!(
                    "{s:?} is neither an extension name ({}) nor an OID",
                    EXTENSION_NAMES.map(|(n, _)| n).join(", ")
                ));
            }
        };
        Ok(ExtensionId {
            oid,
            written: s.to_owned(),
        })
    }
}

impl std::fmt::Display for ExtensionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.written)
    }
}

serde_via_str!(KeyUsageBit, Purpose, ExtensionId);

/// `1.2.3`: at least two arcs of digits.
fn is_dotted_oid(s: &str) -> bool {
    let arcs: Vec<&str> = s.split('.').collect();
    arcs.len() >= 2
        && arcs
            .iter()
            .all(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()))
}

/// One requested extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestedExtension {
    pub oid: String,
    pub critical: bool,
}

/// The requested basicConstraints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BasicConstraints {
    pub ca: bool,
    pub path_len: Option<u32>,
}

/// The public key's algorithm and parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKeyFacts {
    Rsa {
        /// The modulus length in bits, leading zeros not counted.
        modulus_bits: usize,
        modulus_odd: bool,
        /// The public exponent, big-endian, without leading zeros.
        exponent: Vec<u8>,
    },
    Ec {
        /// The named curve's OID; `None` for explicit parameters (RFC 5480 forbids them).
        curve: Option<String>,
    },
    Ed25519,
    Ed448,
    Other {
        algorithm: String,
    },
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_ED448: &str = "1.3.101.113";

impl PublicKeyFacts {
    /// Reads a SubjectPublicKeyInfo (RFC 5280 §4.1.2.7).
    pub fn from_spki(der: &[u8]) -> Result<Self, String> {
        let (_, spki) = SubjectPublicKeyInfo::from_der(der)
            .map_err(|e| format!("the SubjectPublicKeyInfo does not parse: {e}"))?;
        let algorithm = spki.algorithm.algorithm.to_id_string();
        match algorithm.as_str() {
            OID_RSA => match spki.parsed() {
                Ok(PublicKey::RSA(rsa)) => {
                    let modulus = strip_zeros(rsa.modulus);
                    let modulus_bits = match modulus.first() {
                        Some(first) => modulus.len() * 8 - first.leading_zeros() as usize,
                        None => 0,
                    };
                    Ok(PublicKeyFacts::Rsa {
                        modulus_bits,
                        modulus_odd: modulus.last().is_some_and(|b| b & 1 == 1),
                        exponent: strip_zeros(rsa.exponent).to_vec(),
                    })
                }
                _ => Err("the RSA public key does not parse".to_owned()),
            },
            OID_EC => Ok(PublicKeyFacts::Ec {
                curve: spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|oid| oid.to_id_string()),
            }),
            OID_ED25519 => Ok(PublicKeyFacts::Ed25519),
            OID_ED448 => Ok(PublicKeyFacts::Ed448),
            _ => Ok(PublicKeyFacts::Other { algorithm }),
        }
    }
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// What the CSR-stage rules read from a CSR. Candidates to become fields of `ParsedCsr`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsrFacts {
    /// Every requested extension, in CSR order.
    pub extensions: Vec<RequestedExtension>,
    /// The requested keyUsage bits; `None` when the CSR asks for no keyUsage.
    pub key_usage: Option<Vec<KeyUsageBit>>,
    /// The requested extendedKeyUsage purposes; `None` when not requested.
    pub extended_key_usage: Option<Vec<Purpose>>,
    /// The requested basicConstraints; `None` when not requested.
    pub basic_constraints: Option<BasicConstraints>,
    pub public_key: PublicKeyFacts,
    /// The SubjectPublicKeyInfo, DER (for the known-bad-key list).
    pub spki_der: Vec<u8>,
}

impl CsrFacts {
    /// Reads the facts from a CSR's DER. The signature is not checked here: `ParsedCsr`
    /// did that.
    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        let (_, csr) = X509CertificationRequest::from_der(der)
            .map_err(|e| format!("the CSR does not parse: {e}"))?;
        let info = &csr.certification_request_info;
        let mut facts = CsrFacts {
            extensions: Vec::new(),
            key_usage: None,
            extended_key_usage: None,
            basic_constraints: None,
            public_key: PublicKeyFacts::from_spki(info.subject_pki.raw)?,
            spki_der: info.subject_pki.raw.to_vec(),
        };
        for attribute in info.iter_attributes() {
            let ParsedCriAttribute::ExtensionRequest(request) = attribute.parsed_attribute() else {
                continue;
            };
            for extension in &request.extensions {
                facts.extensions.push(RequestedExtension {
                    oid: extension.oid.to_id_string(),
                    critical: extension.critical,
                });
                match extension.parsed_extension() {
                    ParsedExtension::KeyUsage(usage) => {
                        facts.key_usage = Some(KeyUsageBit::from_flags(usage.flags));
                    }
                    ParsedExtension::ExtendedKeyUsage(usage) => {
                        facts.extended_key_usage = Some(Purpose::from_extension(usage));
                    }
                    ParsedExtension::BasicConstraints(constraints) => {
                        facts.basic_constraints = Some(BasicConstraints {
                            ca: constraints.ca,
                            path_len: constraints.path_len_constraint,
                        });
                    }
                    ParsedExtension::ParseError { error } => {
                        return Err(format!(
                            "requested extension {} does not parse: {error}",
                            extension.oid.to_id_string()
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok(facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints as RcgenConstraints, CertificateParams, CustomExtension, IsCa, KeyPair,
        KeyUsagePurpose,
    };

    #[test]
    fn facts_from_a_csr() {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["a.example.com".to_owned()]).unwrap();
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
        ];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        params.is_ca = IsCa::Ca(RcgenConstraints::Constrained(1));
        params.custom_extensions = vec![CustomExtension::from_oid_content(
            &[1, 2, 3, 4],
            vec![0x05, 0x00],
        )];
        let der = params.serialize_request(&key).unwrap().der().to_vec();
        let facts = CsrFacts::from_der(&der).unwrap();
        assert_eq!(
            facts.key_usage,
            Some(vec![
                KeyUsageBit::DigitalSignature,
                KeyUsageBit::KeyCertSign
            ])
        );
        assert_eq!(facts.extended_key_usage, Some(vec![Purpose::ClientAuth]));
        assert_eq!(
            facts.basic_constraints,
            Some(BasicConstraints {
                ca: true,
                path_len: Some(1)
            })
        );
        let oids: Vec<&str> = facts.extensions.iter().map(|e| e.oid.as_str()).collect();
        for oid in [
            "2.5.29.17",
            "2.5.29.15",
            "2.5.29.37",
            "2.5.29.19",
            "1.2.3.4",
        ] {
            assert!(oids.contains(&oid), "{oid} in {oids:?}");
        }
        assert_eq!(
            facts.public_key,
            PublicKeyFacts::Ec {
                curve: Some("1.2.840.10045.3.1.7".to_owned())
            }
        );
    }

    #[test]
    fn a_plain_csr_asks_for_nothing_else() {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["a.example.com".to_owned()]).unwrap();
        let der = params.serialize_request(&key).unwrap().der().to_vec();
        let facts = CsrFacts::from_der(&der).unwrap();
        assert_eq!(facts.key_usage, None);
        assert_eq!(facts.extended_key_usage, None);
        assert_eq!(facts.basic_constraints, None);
        assert_eq!(
            facts.extensions,
            vec![RequestedExtension {
                oid: SUBJECT_ALT_NAME.to_owned(),
                critical: false
            }]
        );
    }

    #[test]
    fn names_parse() {
        assert_eq!(
            "Digital Signature".parse::<KeyUsageBit>(),
            Ok(KeyUsageBit::DigitalSignature)
        );
        assert_eq!("cRLSign".parse::<KeyUsageBit>(), Ok(KeyUsageBit::CrlSign));
        assert_eq!(
            "contentCommitment".parse::<KeyUsageBit>(),
            Ok(KeyUsageBit::NonRepudiation)
        );
        assert!("signing".parse::<KeyUsageBit>().is_err());
        assert_eq!(
            "nameConstraints".parse::<ExtensionId>().map(|e| e.oid),
            Ok("2.5.29.30".to_owned())
        );
        assert_eq!(
            "1.3.6.1.4.1.99".parse::<ExtensionId>().map(|e| e.oid),
            Ok("1.3.6.1.4.1.99".to_owned())
        );
        assert!("1..2".parse::<ExtensionId>().is_err());
        assert_eq!("serverAuth".parse::<Purpose>(), Ok(Purpose::ServerAuth));
    }
}
