//! Reading back what is installed: the leaf's validity, names, serial and ARI identifier, and
//! whether the key beside it is its key.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rcgen::{KeyPair, PublicKeyData};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::pem::Pem;

use super::config::{CertificateConfig, normalise};
use super::schedule::{Current, Installed};

/// The installed certificate, as far as it could be read.
#[derive(Clone, Debug)]
pub struct Inspected {
    pub current: Current,
    /// The serial, hex, for the state file and `--status`.
    pub serial: Option<String>,
    /// RFC 9773 §4.1 `base64url(AKI keyIdentifier) "." base64url(serial)`, when the leaf has
    /// an Authority Key Identifier.
    pub ari_id: Option<String>,
}

/// Read the leaf (from `cert`, else `fullchain`) and the key of `certificate`.
pub fn inspect(certificate: &CertificateConfig) -> Inspected {
    let unreadable = |why: String| Inspected {
        current: Current::Unreadable(why),
        serial: None,
        ari_id: None,
    };
    let path = certificate.leaf_source();
    let pem = match std::fs::read(path) {
        Ok(pem) => pem,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Inspected {
                current: Current::Missing,
                serial: None,
                ari_id: None,
            };
        }
        Err(e) => return unreadable(format!("{}: {e}", path.display())),
    };
    let Some(der) = first_certificate(&pem) else {
        return unreadable(format!("{} holds no PEM certificate", path.display()));
    };
    match describe(&der, &certificate.key) {
        Ok(inspected) => inspected,
        Err(why) => unreadable(format!("{}: {why}", path.display())),
    }
}

/// The first `CERTIFICATE` block of a PEM file.
pub fn first_certificate(pem: &[u8]) -> Option<Vec<u8>> {
    Pem::iter_from_buffer(pem)
        .filter_map(Result::ok)
        .find(|block| block.label == "CERTIFICATE")
        .map(|block| block.contents)
}

fn describe(der: &[u8], key_path: &Path) -> Result<Inspected, String> {
    let (_, leaf) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let validity = leaf.validity();
    let names = leaf_names(&leaf);
    let key_matches = key_matches(&leaf.public_key().subject_public_key.data, key_path);
    let raw_serial = leaf.tbs_certificate.raw_serial();
    let ari_id = leaf
        .iter_extensions()
        .find_map(|extension| match extension.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.as_ref().map(|id| {
                format!(
                    "{}.{}",
                    URL_SAFE_NO_PAD.encode(id.0),
                    URL_SAFE_NO_PAD.encode(raw_serial)
                )
            }),
            _ => None,
        });
    Ok(Inspected {
        current: Current::Present(Installed {
            not_before: validity.not_before.to_datetime(),
            not_after: validity.not_after.to_datetime(),
            names,
            key_matches,
        }),
        serial: Some(leaf.raw_serial_as_string().replace(':', "")),
        ari_id,
    })
}

/// The DNS names and IP addresses of a leaf's subjectAltName, normalised.
pub fn leaf_names(leaf: &X509Certificate<'_>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    if let Ok(Some(san)) = leaf.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => {
                    names.insert(normalise(dns));
                }
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        names.insert(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    names
}

/// Whether the PEM key at `key_path` has the public key `public_key` (the SPKI bit string).
fn key_matches(public_key: &[u8], key_path: &Path) -> bool {
    let Ok(pem) = std::fs::read_to_string(key_path) else {
        return false;
    };
    KeyPair::from_pem(&pem).is_ok_and(|key| key.der_bytes() == public_key)
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::renew::config::AgentConfig;

    fn config(dir: &Path) -> CertificateConfig {
        let text = format!(
            r#"
[server]
directory = "https://127.0.0.1/directory"
[account]
file = "{dir}/account.json"
[[certificate]]
names = ["a.test", "192.0.2.1"]
cert = "{dir}/cert.pem"
key = "{dir}/key.pem"
challenge = {{ type = "http-01" }}
"#,
            dir = dir.display()
        );
        AgentConfig::parse(&text).unwrap().certificates.remove(0)
    }

    fn self_signed(names: &[&str], key: &KeyPair) -> String {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        rcgen::CertificateParams::new(names)
            .unwrap()
            .self_signed(key)
            .unwrap()
            .pem()
    }

    #[test]
    fn inspect_cases() {
        let dir = tempfile::tempdir().unwrap();
        let certificate = config(dir.path());
        assert_eq!(inspect(&certificate).current, Current::Missing);

        std::fs::write(dir.path().join("cert.pem"), "garbage").unwrap();
        assert!(matches!(
            inspect(&certificate).current,
            Current::Unreadable(_)
        ));

        let key = KeyPair::generate().unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        std::fs::write(
            dir.path().join("cert.pem"),
            self_signed(&["A.test", "192.0.2.1"], &key),
        )
        .unwrap();
        let inspected = inspect(&certificate);
        let Current::Present(installed) = &inspected.current else {
            panic!("{inspected:?}");
        };
        assert!(installed.key_matches);
        assert_eq!(installed.names, certificate.name_set());
        assert!(inspected.serial.is_some());

        let other = KeyPair::generate().unwrap();
        std::fs::write(dir.path().join("key.pem"), other.serialize_pem()).unwrap();
        let Current::Present(installed) = inspect(&certificate).current else {
            panic!("expected a readable certificate");
        };
        assert!(!installed.key_matches);
    }
}
