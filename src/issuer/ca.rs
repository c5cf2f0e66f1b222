//! Creating the CA hierarchy: a root (pathLen 1) and one intermediate (pathLen 0) that signs
//! every leaf, plus the serial-number and key-generation helpers the leaves share.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_RSA_SHA256, RsaKeySize, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::keystore::{self, CERT_MODE, KEY_MODE};
use super::{CaOptions, CaPaths, InitOutcome, IssuerError, KeyType};

/// notBefore is set this far in the past so that clients whose clocks run a little slow accept
/// a certificate the moment it is issued.
pub(crate) const BACKDATE: Duration = Duration::minutes(1);

/// Serial numbers are 16 random bytes (RFC 5280 §4.1.2.2 allows up to 20 octets; CA/Browser
/// Forum BR §7.1 asks for at least 64 bits from a CSPRNG). The first byte is forced into
/// 0x40..=0x7f: the top bit clear keeps the INTEGER positive without a padding byte, and the
/// next bit set means there is never a leading zero byte. Every serial is therefore exactly 16
/// bytes, 126 random bits, and exactly 32 lower-case hex digits (see [`serial_hex`]).
const SERIAL_LEN: usize = 16;

pub(crate) fn random_serial() -> Result<SerialNumber, IssuerError> {
    let mut bytes = [0u8; SERIAL_LEN];
    keystore::random(&mut bytes)?;
    bytes[0] = (bytes[0] & 0x3f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

/// The serial convention used everywhere in Mayfly: lower-case hex of the serial's big-endian
/// magnitude, without separators and without leading zero digits (what x509-parser's
/// `serial.to_str_radix(16)` prints). Mayfly's own serials never start with a zero byte, so this
/// is also the plain hex of the DER content octets.
pub fn serial_hex(raw_serial: &[u8]) -> String {
    let hex: String = raw_serial.iter().map(|b| format!("{b:02x}")).collect();
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    }
}

pub(crate) fn generate_key(key_type: KeyType) -> Result<KeyPair, IssuerError> {
    let generated = match key_type {
        KeyType::P256 => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256),
        KeyType::P384 => KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384),
        KeyType::Rsa3072 => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_3072),
    };
    generated.map_err(|e| IssuerError::Crypto(format!("key generation failed: {e}")))
}

fn ca_params(
    common_name: &str,
    path_len: u8,
    key_usages: Vec<KeyUsagePurpose>,
    now: OffsetDateTime,
    validity: Duration,
) -> Result<CertificateParams, IssuerError> {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    params.key_usages = key_usages;
    params.serial_number = Some(random_serial()?);
    params.not_before = now - BACKDATE;
    params.not_after = now + validity;
    Ok(params)
}

/// What [`init_ca`] writes.
struct NewCa {
    root_pem: String,
    root_key: KeyPair,
    intermediate_pem: String,
    intermediate_key: KeyPair,
}

fn generate(options: &CaOptions, now: OffsetDateTime) -> Result<NewCa, IssuerError> {
    let crypto = |e: rcgen::Error| IssuerError::Crypto(format!("cannot sign: {e}"));
    let root_key = generate_key(options.key_type)?;
    let root_params = ca_params(
        &options.root_common_name,
        1,
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign],
        now,
        options.root_validity,
    )?;
    let root_cert = root_params.self_signed(&root_key).map_err(crypto)?;
    let root_issuer = rcgen::Issuer::new(root_params, &root_key);

    let intermediate_key = generate_key(options.key_type)?;
    let mut intermediate_params = ca_params(
        &options.intermediate_common_name,
        0,
        vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ],
        now,
        options.intermediate_validity,
    )?;
    intermediate_params.use_authority_key_identifier_extension = true;
    let intermediate_cert = intermediate_params
        .signed_by(&intermediate_key, &root_issuer)
        .map_err(crypto)?;
    Ok(NewCa {
        root_pem: root_cert.pem(),
        root_key,
        intermediate_pem: intermediate_cert.pem(),
        intermediate_key,
    })
}

/// See [`super::init_ca`]. The root certificate is written last and serves as the commit
/// marker: a directory without `root-ca.pem` has no CA anyone can trust yet, so leftovers of an
/// interrupted init are overwritten.
pub(crate) fn init(
    data_dir: &Path,
    options: &CaOptions,
    passphrase: Option<&str>,
    now: OffsetDateTime,
) -> Result<InitOutcome, IssuerError> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| keystore::file_error(data_dir, format!("cannot create: {e}")))?;
    let paths = CaPaths::new(data_dir);
    match (paths.root_cert.exists(), paths.root_key.exists()) {
        (true, true) => return Ok(InitOutcome::Existing),
        (true, false) => {
            return Err(keystore::file_error(
                &paths.root_key,
                "is missing while root-ca.pem exists; refusing to replace a root that clients \
                 may already trust",
            ));
        }
        (false, _) => {}
    }
    let ca = generate(options, now)?;
    keystore::write_atomic(
        &paths.root_key,
        keystore::encode_key(&ca.root_key, passphrase)?.as_bytes(),
        KEY_MODE,
    )?;
    keystore::write_atomic(
        &paths.intermediate_key,
        keystore::encode_key(&ca.intermediate_key, passphrase)?.as_bytes(),
        KEY_MODE,
    )?;
    keystore::write_atomic(
        &paths.intermediate_cert,
        ca.intermediate_pem.as_bytes(),
        CERT_MODE,
    )?;
    keystore::write_atomic(&paths.root_cert, ca.root_pem.as_bytes(), CERT_MODE)?;
    if passphrase.is_none() {
        tracing::warn!(
            dir = %data_dir.display(),
            "the CA private keys are stored unencrypted (mode 0600); set MAYFLY_CA_PASSPHRASE \
             to encrypt them at rest"
        );
    }
    tracing::info!(dir = %data_dir.display(), key_type = ?options.key_type, "created a new CA");
    Ok(InitOutcome::Created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_positive_fixed_width_and_distinct() {
        let a = random_serial().unwrap().to_bytes();
        let b = random_serial().unwrap().to_bytes();
        assert_ne!(a, b);
        for serial in [a, b] {
            assert_eq!(serial.len(), SERIAL_LEN);
            assert!((0x40..=0x7f).contains(&serial[0]));
            assert_eq!(serial_hex(&serial).len(), 2 * SERIAL_LEN);
        }
    }

    #[test]
    fn serial_hex_convention() {
        for (name, raw, want) in [
            ("plain", &[0x4a, 0x0b][..], "4a0b"),
            ("DER padding byte", &[0x00, 0x80, 0x01][..], "8001"),
            ("leading zero nibble", &[0x0a][..], "a"),
            ("zero", &[0x00][..], "0"),
        ] {
            assert_eq!(serial_hex(raw), want, "{name}");
        }
    }
}
