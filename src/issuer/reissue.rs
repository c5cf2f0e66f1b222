//! What a leaf this CA issued says, so that it can be issued again with a new validity and
//! serial (the direct API's renewal, `POST /v1/renew`): its names, its subject common name, its
//! key usages and its public key. Everything else (the CRL distribution point, caIssuers, the
//! key identifiers) is the issuer's own and is written afresh.

use std::net::IpAddr;

use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use super::{LeafCommonName, LeafProfile, serial_hex};
use crate::acme::Identifier;
use crate::policy::validators::{KeyUsageBit, Purpose};

/// A leaf, read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedLeaf {
    /// Lower-case hex, as [`serial_hex`] prints it.
    pub serial: String,
    /// The dNSName and iPAddress SANs, in certificate order.
    pub identifiers: Vec<Identifier>,
    /// The rfc822Name SANs, in certificate order.
    pub emails: Vec<String>,
    /// keyUsage, extendedKeyUsage and the subject common name, as the leaf has them.
    pub leaf: LeafProfile,
    /// The SubjectPublicKeyInfo, DER.
    pub spki_der: Vec<u8>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl IssuedLeaf {
    /// Reads a DER certificate. Names this CA would not issue (URIs, other names) are refused:
    /// they cannot be issued again as they are.
    pub fn from_der(der: &[u8]) -> Result<IssuedLeaf, String> {
        let (rest, cert) = X509Certificate::from_der(der)
            .map_err(|e| format!("the certificate does not parse: {e}"))?;
        if !rest.is_empty() {
            return Err("the certificate has trailing bytes".to_owned());
        }
        let mut identifiers = Vec::new();
        let mut emails = Vec::new();
        let mut key_usage = Vec::new();
        let mut extended_key_usage = Vec::new();
        for extension in cert.extensions() {
            match extension.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        match name {
                            GeneralName::DNSName(dns) => identifiers
                                .push(Identifier::parse("dns", dns).map_err(|e| e.to_string())?),
                            GeneralName::IPAddress(bytes) => {
                                identifiers.push(Identifier::Ip(ip(bytes)?));
                            }
                            GeneralName::RFC822Name(email) => emails.push((*email).to_owned()),
                            other => {
                                return Err(format!("the subjectAltName {other} is not issued"));
                            }
                        }
                    }
                }
                ParsedExtension::KeyUsage(usage) => {
                    key_usage = KeyUsageBit::from_flags(usage.flags);
                }
                ParsedExtension::ExtendedKeyUsage(usage) => {
                    extended_key_usage = Purpose::from_extension(usage);
                }
                _ => {}
            }
        }
        let common_name = match cert.subject().iter_common_name().next() {
            Some(cn) => LeafCommonName::Given(
                cn.as_str()
                    .map_err(|_| "the subject commonName is not a string".to_owned())?
                    .to_owned(),
            ),
            None => LeafCommonName::None,
        };
        Ok(IssuedLeaf {
            serial: serial_hex(cert.raw_serial()),
            identifiers,
            emails,
            leaf: LeafProfile {
                key_usage,
                extended_key_usage,
                common_name,
            },
            spki_der: cert.public_key().raw.to_vec(),
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
        })
    }
}

fn ip(bytes: &[u8]) -> Result<IpAddr, String> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Ok(v4.into());
    }
    <[u8; 16]>::try_from(bytes)
        .map(Into::into)
        .map_err(|_| format!("an iPAddress of {} bytes", bytes.len()))
}
