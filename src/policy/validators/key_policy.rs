//! `key_policy`: the CSR's public key is of an allowed type and size, has a sound RSA
//! exponent, and is not a known-compromised key.
//!
//! The defaults are RSA 2048–4096 bits, ECDSA P-256 and P-384, and Ed25519. For RSA, the
//! CA/Browser Forum Baseline Requirements §6.1.5–6.1.6 apply: the modulus is a multiple of 8
//! bits and odd, and the public exponent is odd, at least 65537 and at most 2^256 − 1.
//!
//! Known-compromised keys (the Debian OpenSSL weak keys of CVE-2008-0166, keys whose private
//! half was published) are listed by the SHA-256 of their SubjectPublicKeyInfo in
//! `blocked_spki_sha256`. No Debian package ships the weak-key list any more
//! (`openssl-blacklist` is gone), so Mayfly ships none; this option is the hook for one.

use std::collections::BTreeSet;

use aws_lc_rs::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};

use super::csr_facts::PublicKeyFacts;
use super::{Finding, Input, Rule, Stage, Subject};
use crate::acme::ProblemType;

/// A key type `key_policy` can allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyType {
    Rsa,
    EcdsaP256,
    EcdsaP384,
    EcdsaP521,
    Ed25519,
    Ed448,
}

impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyType::Rsa => "RSA",
            KeyType::EcdsaP256 => "ECDSA P-256",
            KeyType::EcdsaP384 => "ECDSA P-384",
            KeyType::EcdsaP521 => "ECDSA P-521",
            KeyType::Ed25519 => "Ed25519",
            KeyType::Ed448 => "Ed448",
        })
    }
}

/// RFC 5480 §2.1.1.1 named curves.
const CURVES: [(&str, KeyType); 3] = [
    ("1.2.840.10045.3.1.7", KeyType::EcdsaP256),
    ("1.3.132.0.34", KeyType::EcdsaP384),
    ("1.3.132.0.35", KeyType::EcdsaP521),
];

/// The smallest RSA exponent the Baseline Requirements §6.1.6 recommend (2^16 + 1).
const MIN_RSA_EXPONENT: u64 = 65_537;
/// Exponents above 2^256 − 1 (32 bytes) are outside the Baseline Requirements' range.
const MAX_RSA_EXPONENT_BYTES: usize = 32;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPolicy {
    #[serde(default = "default_allowed_keys")]
    pub allowed_keys: Vec<KeyType>,
    #[serde(default = "default_rsa_min_bits")]
    pub rsa_min_bits: usize,
    #[serde(default = "default_rsa_max_bits")]
    pub rsa_max_bits: usize,
    /// Lower-case hex SHA-256 digests of refused SubjectPublicKeyInfos.
    #[serde(default)]
    pub blocked_spki_sha256: BTreeSet<String>,
}

fn default_allowed_keys() -> Vec<KeyType> {
    vec![
        KeyType::Rsa,
        KeyType::EcdsaP256,
        KeyType::EcdsaP384,
        KeyType::Ed25519,
    ]
}
/// NIST SP 800-131A: RSA below 2048 bits is disallowed.
fn default_rsa_min_bits() -> usize {
    2048
}
/// Larger keys slow every handshake and buy nothing for certificates that live hours.
fn default_rsa_max_bits() -> usize {
    4096
}

impl Default for KeyPolicy {
    fn default() -> Self {
        KeyPolicy {
            allowed_keys: default_allowed_keys(),
            rsa_min_bits: default_rsa_min_bits(),
            rsa_max_bits: default_rsa_max_bits(),
            blocked_spki_sha256: BTreeSet::new(),
        }
    }
}

impl KeyPolicy {
    fn allowed(&self) -> String {
        self.allowed_keys
            .iter()
            .map(|k| match k {
                KeyType::Rsa => format!("RSA {}–{} bits", self.rsa_min_bits, self.rsa_max_bits),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn refusal(&self, key: &PublicKeyFacts, spki_der: &[u8]) -> Option<String> {
        let fingerprint = hex(digest(&SHA256, spki_der).as_ref());
        if self.blocked_spki_sha256.contains(&fingerprint) {
            return Some(format!(
                "it is a known-compromised key (SubjectPublicKeyInfo SHA-256 {fingerprint})"
            ));
        }
        let key_type = match key {
            PublicKeyFacts::Rsa { .. } => KeyType::Rsa,
            PublicKeyFacts::Ec { curve: None } => {
                return Some(
                    "ECDSA keys with explicit curve parameters are not allowed (RFC 5480 §2.1.1)"
                        .to_owned(),
                );
            }
            PublicKeyFacts::Ec { curve: Some(oid) } => {
                match CURVES.iter().find(|(o, _)| o == oid) {
                    Some((_, key_type)) => *key_type,
                    None => {
                        return Some(format!(
                            "ECDSA keys on curve {oid} are not allowed (allowed: {})",
                            self.allowed()
                        ));
                    }
                }
            }
            PublicKeyFacts::Ed25519 => KeyType::Ed25519,
            PublicKeyFacts::Ed448 => KeyType::Ed448,
            PublicKeyFacts::Other { algorithm } => {
                return Some(format!(
                    "keys of algorithm {algorithm} are not allowed (allowed: {})",
                    self.allowed()
                ));
            }
        };
        if !self.allowed_keys.contains(&key_type) {
            return Some(format!(
                "{key_type} keys are not allowed (allowed: {})",
                self.allowed()
            ));
        }
        match key {
            PublicKeyFacts::Rsa {
                modulus_bits,
                modulus_odd,
                exponent,
            } => self.rsa_refusal(*modulus_bits, *modulus_odd, exponent),
            _ => None,
        }
    }

    fn rsa_refusal(&self, bits: usize, modulus_odd: bool, exponent: &[u8]) -> Option<String> {
        if bits < self.rsa_min_bits || bits > self.rsa_max_bits {
            return Some(format!(
                "an RSA key of {bits} bits is outside the allowed {}–{} bits",
                self.rsa_min_bits, self.rsa_max_bits
            ));
        }
        if !bits.is_multiple_of(8) {
            return Some(format!(
                "an RSA modulus of {bits} bits is not a multiple of 8 bits (Baseline Requirements §6.1.5)"
            ));
        }
        if !modulus_odd {
            return Some("the RSA modulus is even".to_owned());
        }
        if exponent.len() > MAX_RSA_EXPONENT_BYTES {
            return Some(
                "the RSA public exponent is longer than 256 bits (Baseline Requirements §6.1.6)"
                    .to_owned(),
            );
        }
        let shown = match exponent.len() {
            0..=8 => exponent
                .iter()
                .fold(0u64, |n, b| (n << 8) | u64::from(*b))
                .to_string(),
            _ => format!("0x{}", hex(exponent)),
        };
        if exponent.last().is_none_or(|b| b & 1 == 0) {
            return Some(format!("the RSA public exponent {shown} is even"));
        }
        let small = exponent.len() <= 3
            && exponent.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b)) < MIN_RSA_EXPONENT;
        if small {
            return Some(format!(
                "the RSA public exponent {shown} is below {MIN_RSA_EXPONENT}"
            ));
        }
        None
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Rule for KeyPolicy {
    fn check(&self, input: &Input<'_>) -> Vec<Finding> {
        let Some(csr) = input.csr else {
            return Vec::new();
        };
        self.refusal(&csr.public_key, &csr.spki_der)
            .map(|reason| Finding::new(Subject::PublicKey, reason))
            .into_iter()
            .collect()
    }

    /// RFC 8555 §6.7: `badPublicKey`.
    fn problem_type(&self, _stage: Stage) -> ProblemType {
        ProblemType::BadPublicKey
    }

    fn check_options(&self) -> Result<(), String> {
        if self.allowed_keys.is_empty() {
            return Err("allowed_keys is empty, so every key would be refused".to_owned());
        }
        if self.rsa_min_bits < 1024 || self.rsa_min_bits > self.rsa_max_bits {
            return Err(format!(
                "rsa_min_bits ({}) must be at least 1024 and at most rsa_max_bits ({})",
                self.rsa_min_bits, self.rsa_max_bits
            ));
        }
        for fingerprint in &self.blocked_spki_sha256 {
            let hex_digits = fingerprint
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if fingerprint.len() != 64 || !hex_digits {
                return Err(format!(
                    "blocked_spki_sha256: {fingerprint:?} is not 64 lower-case hex digits"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "key_policy_tests.rs"]
mod tests;
