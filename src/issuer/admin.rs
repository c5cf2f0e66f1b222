//! Admin client certificates (issue 7): the credential of the admin API.
//!
//! The `admin` role is a certificate policy (RFC 5280 §4.2.1.4) of Mayfly's own, together
//! with extendedKeyUsage clientAuth. ACME and `/v1/sign` leaves never carry a
//! certificatePolicies extension ([`super::leaf::leaf_params`] builds every extension itself
//! and copies nothing from a CSR), so no client of those paths can obtain the role; only
//! `mayfly admin bootstrap`, which holds the CA key, signs it.

use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{ExtendedKeyUsage, ParsedExtension};
use x509_parser::prelude::FromDer;

use super::{Issuer, IssuerError, ca};

/// The admin policy: a UUID OID (ITU-T X.667, arc 2.25), which needs no registration and
/// cannot collide with anyone else's policy.
pub const ADMIN_POLICY_OID: &str = "2.25.280515922349190939791148902161150077749";
const ADMIN_POLICY_UUID: u128 = 280_515_922_349_190_939_791_148_902_161_150_077_749;

/// id-ce-certificatePolicies (RFC 5280 §4.2.1.4).
const CERTIFICATE_POLICIES: &[u64] = &[2, 5, 29, 32];

/// A freshly signed admin client certificate.
pub struct AdminCredential {
    /// The leaf, then the intermediate (PEM): what the client presents.
    pub chain_pem: String,
    /// The leaf's private key (PKCS#8 PEM).
    pub key_pem: String,
    /// Lower-case hex, as every Mayfly serial.
    pub serial: String,
    pub not_after: OffsetDateTime,
}

impl Issuer {
    /// Signs an admin client certificate for `name` (its CN), valid from now for `validity`,
    /// never beyond the intermediate.
    pub fn issue_admin_certificate(
        &self,
        name: &str,
        now: OffsetDateTime,
        validity: Duration,
    ) -> Result<AdminCredential, IssuerError> {
        if name.is_empty() || name.len() > 64 {
            return Err(IssuerError::Request(
                "the admin certificate's name must have 1 to 64 characters".into(),
            ));
        }
        let not_after = (now + validity).min(self.intermediate_not_after);
        let mut params = CertificateParams::default();
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, name);
        params.distinguished_name = subject;
        params.not_before = now - ca::BACKDATE;
        params.not_after = not_after;
        let serial_number = ca::random_serial()?;
        let serial = super::serial_hex(&serial_number.to_bytes());
        params.serial_number = Some(serial_number);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        params.custom_extensions = vec![CustomExtension::from_oid_content(
            CERTIFICATE_POLICIES,
            admin_policies_der(),
        )];
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| IssuerError::Crypto(format!("key generation failed: {e}")))?;
        let cert = params
            .signed_by(&key, &self.signer)
            .map_err(|e| IssuerError::Crypto(format!("cannot sign: {e}")))?;
        Ok(AdminCredential {
            chain_pem: format!("{}{}", cert.pem(), self.intermediate_pem),
            key_pem: key.serialize_pem(),
            serial,
            not_after,
        })
    }
}

impl AdminCredential {
    /// Writes the chain to `cert_path` and the key to `key_path`, both mode 0600 (the
    /// certificate names the admin; neither is for others to read), the key first.
    pub fn write(
        &self,
        cert_path: &std::path::Path,
        key_path: &std::path::Path,
    ) -> Result<(), IssuerError> {
        super::keystore::write_atomic(
            key_path,
            self.key_pem.as_bytes(),
            super::keystore::KEY_MODE,
        )?;
        super::keystore::write_atomic(
            cert_path,
            self.chain_pem.as_bytes(),
            super::keystore::KEY_MODE,
        )
    }
}

/// Whether the certificate (DER) carries the admin role: the admin policy and
/// extendedKeyUsage clientAuth.
pub fn has_admin_role(der: &[u8]) -> bool {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return false;
    };
    // Compared as DER content: the last arc is wider than 64 bits, which x509-parser's
    // `to_id_string` cannot print as dotted text.
    let admin_policy = oid_der(2, 25, ADMIN_POLICY_UUID);
    let admin_policy = &admin_policy[2..];
    let mut policy = false;
    let mut client_auth = false;
    for extension in cert.extensions() {
        match extension.parsed_extension() {
            ParsedExtension::CertificatePolicies(policies) => {
                policy |= policies
                    .iter()
                    .any(|p| p.policy_id.as_bytes() == admin_policy);
            }
            ParsedExtension::ExtendedKeyUsage(ExtendedKeyUsage {
                client_auth: yes, ..
            }) => client_auth |= *yes,
            _ => {}
        }
    }
    policy && client_auth
}

/// certificatePolicies ::= SEQUENCE { PolicyInformation ::= SEQUENCE { policyIdentifier } }.
fn admin_policies_der() -> Vec<u8> {
    let oid = oid_der(2, 25, ADMIN_POLICY_UUID);
    let info = tlv(0x30, &oid);
    tlv(0x30, &info)
}

/// The DER OBJECT IDENTIFIER `first.second.last`; `first * 40 + second` fits one byte here.
fn oid_der(first: u8, second: u8, last: u128) -> Vec<u8> {
    let mut content = vec![first * 40 + second];
    let mut base128 = Vec::new();
    let mut rest = last;
    loop {
        // The low seven bits; `rest & 0x7f` always fits a byte.
        base128.push((rest & 0x7f) as u8);
        rest >>= 7;
        if rest == 0 {
            break;
        }
    }
    base128.reverse();
    let last_index = base128.len() - 1;
    for (i, byte) in base128.iter().enumerate() {
        content.push(if i == last_index { *byte } else { byte | 0x80 });
    }
    tlv(0x06, &content)
}

/// A DER tag-length-value with a short or long-form length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_policy_oid_encodes_as_its_text() {
        let der = oid_der(2, 25, ADMIN_POLICY_UUID);
        assert_eq!(der[0], 0x06, "an OBJECT IDENTIFIER");
        assert_eq!(usize::from(der[1]), der.len() - 2, "short-form length");
        assert_eq!(der[2], 2 * 40 + 25);
        // Base-128 decoding of the last arc gives the UUID back.
        let last = der[3..]
            .iter()
            .fold(0u128, |acc, byte| (acc << 7) | u128::from(byte & 0x7f));
        assert_eq!(format!("2.25.{last}"), ADMIN_POLICY_OID);
        assert!(der[3..der.len() - 1].iter().all(|b| b & 0x80 != 0));
        assert_eq!(der[der.len() - 1] & 0x80, 0);
    }

    #[test]
    fn admin_certificates_have_the_role_and_ca_certificates_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let options = super::super::CaOptions {
            key_type: super::super::KeyType::P256,
            root_common_name: "Root".into(),
            intermediate_common_name: "Intermediate".into(),
            root_validity: Duration::days(3650),
            intermediate_validity: Duration::days(365),
        };
        super::super::init_ca(dir.path(), &options, None).unwrap();
        let issuer = Issuer::load(dir.path(), None).unwrap();
        let now = OffsetDateTime::now_utc();
        let admin = issuer
            .issue_admin_certificate("ops", now, Duration::days(30))
            .unwrap();
        let der = x509_parser::pem::Pem::iter_from_buffer(admin.chain_pem.as_bytes())
            .next()
            .unwrap()
            .unwrap()
            .contents;
        assert!(has_admin_role(&der));
        let (_, intermediate) =
            x509_parser::pem::parse_x509_pem(issuer.intermediate_pem().as_bytes()).unwrap();
        assert!(!has_admin_role(&intermediate.contents));
        assert!(!has_admin_role(b"not a certificate"));
    }
}
