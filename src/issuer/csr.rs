//! CSR parsing (RFC 2986) into the facts policy and finalize need.
//!
//! Only the subject's commonName, the subjectAltName's dNSName, iPAddress and rfc822Name
//! entries and the public key are read. Email addresses are not ACME identifiers: finalize
//! refuses them, and only the direct API (`/v1/sign`) issues them, to the token that allows
//! them. Everything else a CSR may request (key usages, basicConstraints, other
//! extensions) is ignored: the issuer decides the profile (RFC 8555 §7.4).

use std::net::IpAddr;

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

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
    /// rfc822Name SANs (RFC 5280 §4.2.1.6), in CSR order, without repeats (compared
    /// case-insensitively), as written.
    pub emails: Vec<String>,
    /// The SubjectPublicKeyInfo, DER.
    pub spki_der: Vec<u8>,
}

impl ParsedCsr {
    pub fn from_der(der: &[u8]) -> Result<Self, CsrError> {
        let (rest, csr) =
            X509CertificationRequest::from_der(der).map_err(|e| CsrError::Syntax(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CsrError::Syntax("trailing bytes after the CSR".to_owned()));
        }
        csr.verify_signature().map_err(|_| CsrError::BadSignature)?;
        let info = &csr.certification_request_info;

        let mut common_names = info.subject.iter_common_name();
        let common_name = match common_names.next() {
            None => None,
            Some(attribute) => Some(
                attribute
                    .as_str()
                    .map_err(|_| {
                        CsrError::Unsupported("the subject commonName is not a string".to_owned())
                    })?
                    .to_owned(),
            ),
        };
        if common_names.next().is_some() {
            return Err(CsrError::Unsupported(
                "the subject has more than one commonName".to_owned(),
            ));
        }

        let mut san = Vec::new();
        let mut emails: Vec<String> = Vec::new();
        let mut seen_san_extension = false;
        for extension in csr.requested_extensions().into_iter().flatten() {
            match extension {
                ParsedExtension::SubjectAlternativeName(names) => {
                    if seen_san_extension {
                        return Err(CsrError::Unsupported(
                            "the CSR requests two subjectAltName extensions".to_owned(),
                        ));
                    }
                    seen_san_extension = true;
                    for name in &names.general_names {
                        if let GeneralName::RFC822Name(email) = name {
                            let email = email_address(email)?;
                            if !emails.iter().any(|e| e.eq_ignore_ascii_case(&email)) {
                                emails.push(email);
                            }
                        } else {
                            san.push(identifier(name)?);
                        }
                    }
                }
                ParsedExtension::ParseError { error } => {
                    return Err(CsrError::Syntax(format!(
                        "a requested extension does not parse: {error}"
                    )));
                }
                _ => {}
            }
        }

        Ok(ParsedCsr {
            der: der.to_vec(),
            common_name,
            san,
            emails,
            spki_der: info.subject_pki.raw.to_vec(),
        })
    }

    /// The names the CSR asks for: the SANs plus the CN (if it is not among them).
    ///
    /// The CN is read as an IP address if it parses as one, else as a DNS name; a CN that is
    /// neither is left out here (policy can refuse it by looking at `common_name`).
    pub fn names(&self) -> Vec<Identifier> {
        let mut names: Vec<Identifier> = Vec::with_capacity(self.san.len() + 1);
        let common_name = self.common_name.as_deref().and_then(cn_identifier);
        for name in self.san.iter().cloned().chain(common_name) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }
}

fn cn_identifier(common_name: &str) -> Option<Identifier> {
    match common_name.parse::<IpAddr>() {
        Ok(ip) => Some(Identifier::Ip(ip)),
        Err(_) => Identifier::parse("dns", common_name).ok(),
    }
}

/// An rfc822Name SAN: `local@domain`, printable ASCII without spaces (RFC 5280 §4.2.1.6 keeps
/// the IA5String form; internationalised addresses, RFC 9598, are not supported).
fn email_address(email: &str) -> Result<String, CsrError> {
    let refused = || {
        CsrError::Unsupported(format!(
            "subjectAltName rfc822Name {email:?} is not an address"
        ))
    };
    let (local, domain) = email.rsplit_once('@').ok_or_else(refused)?;
    let printable = email.bytes().all(|b| b.is_ascii_graphic());
    if local.is_empty() || domain.is_empty() || domain.contains('@') || !printable {
        return Err(refused());
    }
    Identifier::parse("dns", domain).map_err(|_| refused())?;
    Ok(email.to_owned())
}

/// One SAN entry as an identifier; anything but a valid DNS name or IP address is refused,
/// named, so the client learns which entry is wrong.
fn identifier(name: &GeneralName<'_>) -> Result<Identifier, CsrError> {
    match name {
        GeneralName::DNSName(dns) => Identifier::parse("dns", dns)
            .map_err(|e| CsrError::Unsupported(format!("subjectAltName dNSName: {e}"))),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => Ok(Identifier::Ip(IpAddr::from(
                <[u8; 4]>::try_from(*bytes).unwrap_or_default(),
            ))),
            16 => Ok(Identifier::Ip(IpAddr::from(
                <[u8; 16]>::try_from(*bytes).unwrap_or_default(),
            ))),
            n => Err(CsrError::Unsupported(format!(
                "subjectAltName iPAddress of {n} bytes is neither IPv4 nor IPv6"
            ))),
        },
        other => Err(CsrError::Unsupported(format!(
            "subjectAltName entry {other} is not a DNS name or IP address"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    fn csr_der(common_name: Option<&str>, sans: Vec<SanType>) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = common_name {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.subject_alt_names = sans;
        params.serialize_request(&key).unwrap().der().to_vec()
    }

    fn dns(name: &str) -> SanType {
        SanType::DnsName(name.try_into().unwrap())
    }

    fn ip(addr: &str) -> SanType {
        SanType::IpAddress(addr.parse().unwrap())
    }

    fn id(kind: &str, value: &str) -> Identifier {
        Identifier::parse(kind, value).unwrap()
    }

    #[test]
    fn names_from_san_and_common_name() {
        let cases = vec![
            (
                "CN, DNS and IP SANs, normalised",
                Some("cn.example.com"),
                vec![dns("WWW.Example.com"), ip("192.0.2.1"), ip("2001:db8::1")],
                vec![
                    id("dns", "www.example.com"),
                    id("ip", "192.0.2.1"),
                    id("ip", "2001:db8::1"),
                    id("dns", "cn.example.com"),
                ],
            ),
            (
                "CN already among the SANs",
                Some("a.example.com"),
                vec![dns("a.example.com"), dns("b.example.com")],
                vec![id("dns", "a.example.com"), id("dns", "b.example.com")],
            ),
            (
                "CN only",
                Some("only.example.com"),
                vec![],
                vec![id("dns", "only.example.com")],
            ),
            (
                "IP in the CN",
                Some("192.0.2.7"),
                vec![dns("x.example.com")],
                vec![id("dns", "x.example.com"), id("ip", "192.0.2.7")],
            ),
            (
                "duplicate SANs",
                None,
                vec![dns("d.example.com"), dns("D.example.com")],
                vec![id("dns", "d.example.com")],
            ),
        ];
        for (name, cn, sans, want) in cases {
            let parsed = ParsedCsr::from_der(&csr_der(cn, sans)).unwrap();
            assert_eq!(parsed.names(), want, "{name}");
            assert_eq!(parsed.common_name.as_deref(), cn, "{name}");
        }
    }

    #[test]
    fn san_and_spki_are_kept() {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["a.example.com".to_owned()]).unwrap();
        params.subject_alt_names.push(ip("10.0.0.1"));
        let der = params.serialize_request(&key).unwrap().der().to_vec();
        let parsed = ParsedCsr::from_der(&der).unwrap();
        assert_eq!(
            parsed.san,
            vec![id("dns", "a.example.com"), id("ip", "10.0.0.1")]
        );
        assert_eq!(
            parsed.spki_der,
            rcgen::PublicKeyData::subject_public_key_info(&key)
        );
        assert_eq!(parsed.der, der);
    }

    #[test]
    fn email_sans_are_kept_apart() {
        let email = |e: &str| SanType::Rfc822Name(e.try_into().unwrap());
        let der = csr_der(
            None,
            vec![
                email("Alice@Example.com"),
                dns("a.example.com"),
                email("alice@example.com"),
                email("bob@example.com"),
            ],
        );
        let parsed = ParsedCsr::from_der(&der).unwrap();
        assert_eq!(parsed.emails, ["Alice@Example.com", "bob@example.com"]);
        assert_eq!(parsed.names(), vec![id("dns", "a.example.com")]);
    }

    #[test]
    fn bad_csrs_are_refused() {
        let good = csr_der(Some("a.example.com"), vec![dns("a.example.com")]);
        let mut tampered = good.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 0x01;
        type Check = fn(&CsrError) -> bool;
        let cases: Vec<(&str, Vec<u8>, Check)> = vec![
            ("signature byte flipped", tampered, |e| {
                *e == CsrError::BadSignature
            }),
            ("garbage", b"not a csr".to_vec(), |e| {
                matches!(e, CsrError::Syntax(_))
            }),
            ("empty", Vec::new(), |e| matches!(e, CsrError::Syntax(_))),
            ("truncated", good[..good.len() / 2].to_vec(), |e| {
                matches!(e, CsrError::Syntax(_))
            }),
            (
                "URI SAN",
                csr_der(
                    None,
                    vec![SanType::URI("https://a.example.com/".try_into().unwrap())],
                ),
                |e| matches!(e, CsrError::Unsupported(m) if m.contains("a.example.com")),
            ),
            (
                "email SAN that is not an address",
                csr_der(
                    None,
                    vec![SanType::Rfc822Name("no-at-sign".try_into().unwrap())],
                ),
                |e| matches!(e, CsrError::Unsupported(m) if m.contains("no-at-sign")),
            ),
            (
                "invalid DNS SAN",
                csr_der(None, vec![dns("bad_name.example")]),
                |e| matches!(e, CsrError::Unsupported(m) if m.contains("bad_name.example")),
            ),
        ];
        for (name, der, expected) in cases {
            let err = ParsedCsr::from_der(&der).err();
            assert!(err.as_ref().is_some_and(expected), "{name}: got {err:?}");
        }
    }
}
