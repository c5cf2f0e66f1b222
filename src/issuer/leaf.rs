//! Building end-entity certificates: ACME leaves from a prepared request, and the server's own
//! HTTPS certificate. The profile is fixed here and never copied from a CSR (RFC 8555 §7.4: the
//! CA decides what goes into the certificate; the CSR contributes its public key).

use std::net::IpAddr;

use rcgen::{
    CertificateParams, CrlDistributionPoint, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    IsCa, KeyUsagePurpose, SanType, SubjectPublicKeyInfo,
};
use time::OffsetDateTime;

use super::ca;
use super::{IssuerError, LeafCommonName, LeafProfile};
use crate::acme::Identifier;
use crate::policy::validators::{KeyUsageBit, Purpose};

/// RFC 5280 Appendix A: `ub-common-name INTEGER ::= 64`. A longer first name is left out of the
/// subject; the SAN carries it anyway (CA/Browser Forum BR §7.1.4.3 makes the CN optional).
const MAX_COMMON_NAME_LEN: usize = 64;

/// rsaEncryption (RFC 8017 Appendix C): RSA subject keys also get keyEncipherment, which TLS 1.2
/// RSA key exchange needs.
const RSA_ENCRYPTION_OID: &str = "1.2.840.113549.1.1.1";

/// The subject key of a leaf, taken from the CSR's SubjectPublicKeyInfo.
#[derive(Debug)]
pub(crate) struct SubjectKey {
    pub(crate) spki: SubjectPublicKeyInfo,
    pub(crate) is_rsa: bool,
}

impl SubjectKey {
    pub(crate) fn from_spki_der(spki_der: &[u8]) -> Result<Self, IssuerError> {
        use x509_parser::prelude::FromDer;
        let (_, parsed) =
            x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der).map_err(|e| {
                IssuerError::Request(format!("the CSR's public key does not parse: {e}"))
            })?;
        let is_rsa = parsed.algorithm.algorithm.to_id_string() == RSA_ENCRYPTION_OID;
        let spki = SubjectPublicKeyInfo::from_der(spki_der).map_err(|e| {
            IssuerError::Request(format!("the CSR's public key type is not supported: {e}"))
        })?;
        Ok(SubjectKey { spki, is_rsa })
    }
}

/// The parameters of an ACME leaf: see [`super::Issuer::issue`] for the profile.
pub(crate) fn leaf_params(
    identifiers: &[Identifier],
    emails: &[String],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    subject_is_rsa: bool,
    profile: &LeafProfile,
) -> Result<CertificateParams, IssuerError> {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    let common_name = match &profile.common_name {
        LeafCommonName::None => None,
        LeafCommonName::Given(common_name) => Some(common_name.as_str()),
        LeafCommonName::FirstDnsName => identifiers.iter().find_map(|id| match id {
            Identifier::Dns(name) => Some(name.as_str()),
            Identifier::Ip(_) => None,
        }),
    };
    if let Some(common_name) = common_name.filter(|n| n.len() <= MAX_COMMON_NAME_LEN) {
        name.push(DnType::CommonName, common_name);
    }
    params.distinguished_name = name;
    params.subject_alt_names = identifiers.iter().map(san).collect::<Result<Vec<_>, _>>()?;
    for email in emails {
        let ia5 = email.as_str().try_into().map_err(|e| {
            IssuerError::Request(format!("{email:?} cannot go into a certificate: {e}"))
        })?;
        params.subject_alt_names.push(SanType::Rfc822Name(ia5));
    }
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(ca::random_serial()?);
    params.key_usages = profile.key_usage.iter().map(|&u| key_usage(u)).collect();
    if subject_is_rsa && !profile.key_usage.contains(&KeyUsageBit::KeyEncipherment) {
        params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    params.extended_key_usages = profile
        .extended_key_usage
        .iter()
        .map(extended_key_usage)
        .collect::<Result<_, _>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// RFC 5280 §4.2.1.3 and §4.2.1.9: keyCertSign needs cA true, and cRLSign is a CA's; RFC 6960
/// §4.2.2.2: OCSPSigning would make a leaf an OCSP responder for its issuer; and
/// anyExtendedKeyUsage would allow every purpose. A leaf gets none of them, whatever the CSR
/// or a fixup asked for.
pub(crate) fn check_usages(profile: &LeafProfile) -> Result<(), IssuerError> {
    let refused_bit = profile
        .key_usage
        .iter()
        .find(|bit| matches!(bit, KeyUsageBit::KeyCertSign | KeyUsageBit::CrlSign));
    if let Some(bit) = refused_bit {
        return Err(IssuerError::Request(format!(
            "keyUsage {bit} is for CA certificates; this CA issues end-entity certificates only"
        )));
    }
    let refused_purpose = profile
        .extended_key_usage
        .iter()
        .find(|p| matches!(p, Purpose::OcspSigning | Purpose::Any));
    if let Some(purpose) = refused_purpose {
        return Err(IssuerError::Request(format!(
            "extendedKeyUsage {purpose} is not issued to end-entity certificates"
        )));
    }
    Ok(())
}

fn key_usage(usage: KeyUsageBit) -> KeyUsagePurpose {
    match usage {
        KeyUsageBit::DigitalSignature => KeyUsagePurpose::DigitalSignature,
        KeyUsageBit::NonRepudiation => KeyUsagePurpose::ContentCommitment,
        KeyUsageBit::KeyEncipherment => KeyUsagePurpose::KeyEncipherment,
        KeyUsageBit::DataEncipherment => KeyUsagePurpose::DataEncipherment,
        KeyUsageBit::KeyAgreement => KeyUsagePurpose::KeyAgreement,
        KeyUsageBit::KeyCertSign => KeyUsagePurpose::KeyCertSign,
        KeyUsageBit::CrlSign => KeyUsagePurpose::CrlSign,
        KeyUsageBit::EncipherOnly => KeyUsagePurpose::EncipherOnly,
        KeyUsageBit::DecipherOnly => KeyUsagePurpose::DecipherOnly,
    }
}

fn extended_key_usage(purpose: &Purpose) -> Result<ExtendedKeyUsagePurpose, IssuerError> {
    Ok(match purpose {
        Purpose::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
        Purpose::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
        Purpose::CodeSigning => ExtendedKeyUsagePurpose::CodeSigning,
        Purpose::EmailProtection => ExtendedKeyUsagePurpose::EmailProtection,
        Purpose::TimeStamping => ExtendedKeyUsagePurpose::TimeStamping,
        Purpose::OcspSigning => ExtendedKeyUsagePurpose::OcspSigning,
        Purpose::Any => ExtendedKeyUsagePurpose::Any,
        Purpose::Other(oid) => ExtendedKeyUsagePurpose::Other(
            oid.split('.')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|_| IssuerError::Request(format!("{oid:?} is not an OID")))?,
        ),
    })
}

/// RFC 5280 §4.2.1.13: one distribution point, a full name with one http:// URI, no reasons
/// and no cRLIssuer (the CRL is signed by the certificate's issuer).
pub(crate) fn add_crl_distribution_point(params: &mut CertificateParams, url: String) {
    params.crl_distribution_points = vec![CrlDistributionPoint { uris: vec![url] }];
}

/// id-pe-authorityInfoAccess (RFC 5280 §4.2.2.1).
const AUTHORITY_INFO_ACCESS: [u64; 9] = [1, 3, 6, 1, 5, 5, 7, 1, 1];
/// id-ad-caIssuers (RFC 5280 §4.2.2.1), DER-encoded with its tag and length.
const CA_ISSUERS_OID_DER: [u8; 10] = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];

/// RFC 5280 §4.2.2.1: authorityInfoAccess with one caIssuers access description, an http://
/// URI serving the issuer's certificate (DER, RFC 5280 §4.2.2.1 "certs-only" or a single
/// certificate). Not critical. rcgen has no type for it, so the extension is encoded here:
/// `SEQUENCE { SEQUENCE { caIssuers, [6] IA5String uri } }`.
pub(crate) fn add_ca_issuers(params: &mut CertificateParams, url: &str) {
    let uri = der(0x86, url.as_bytes());
    let description = der(0x30, &[CA_ISSUERS_OID_DER.as_slice(), &uri].concat());
    let content = der(0x30, &description);
    params
        .custom_extensions
        .push(rcgen::CustomExtension::from_oid_content(
            &AUTHORITY_INFO_ACCESS,
            content,
        ));
}

/// One DER tag-length-value (X.690 §8.1), definite length.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn san(identifier: &Identifier) -> Result<SanType, IssuerError> {
    Ok(match identifier {
        Identifier::Ip(ip) => SanType::IpAddress(*ip),
        Identifier::Dns(name) => SanType::DnsName(name.as_str().try_into().map_err(|e| {
            IssuerError::Request(format!("{name:?} cannot go into a certificate: {e}"))
        })?),
    })
}

/// The names the server certificate must cover: the loopback names every local client uses,
/// then `hostnames` (each an IP address if it parses as one, else a DNS name), without repeats.
pub(crate) fn server_identifiers(hostnames: &[String]) -> Result<Vec<Identifier>, IssuerError> {
    let mut identifiers = vec![
        Identifier::Dns("localhost".to_owned()),
        Identifier::Ip(IpAddr::from([127, 0, 0, 1])),
        Identifier::Ip(std::net::Ipv6Addr::LOCALHOST.into()),
    ];
    for hostname in hostnames {
        let identifier = match hostname.parse::<IpAddr>() {
            Ok(ip) => Identifier::Ip(ip),
            Err(_) => Identifier::parse("dns", hostname)
                .map_err(|e| IssuerError::Request(format!("server hostname {hostname:?}: {e}")))?,
        };
        if !identifiers.contains(&identifier) {
            identifiers.push(identifier);
        }
    }
    Ok(identifiers)
}

/// The server certificate's profile: like an ACME leaf, but with a fixed CN.
pub(crate) fn server_params(
    identifiers: &[Identifier],
    now: OffsetDateTime,
) -> Result<CertificateParams, IssuerError> {
    let mut params = leaf_params(
        identifiers,
        &[],
        now - ca::BACKDATE,
        now + SERVER_VALIDITY,
        false,
        &LeafProfile::default(),
    )?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "Mayfly server");
    params.distinguished_name = name;
    Ok(params)
}

/// The server certificate is renewed by restarting Mayfly; 30 days leaves weeks of margin for
/// a long-running process while keeping a leaked key short-lived.
pub(crate) const SERVER_VALIDITY: time::Duration = time::Duration::days(30);

/// A server certificate is reused only if it stays valid for at least this long, so a restart
/// never starts a server whose certificate expires before the next routine restart.
pub(crate) const SERVER_MIN_REMAINING: time::Duration = time::Duration::days(1);
