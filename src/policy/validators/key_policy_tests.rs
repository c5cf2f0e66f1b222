use super::super::test_support::*;
use super::super::{CsrFacts, PublicKeyFacts, Requester};
use super::*;
use rcgen::{KeyPair, RsaKeySize, SignatureAlgorithm};

/// A DER TLV with a definite length.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
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

fn integer(bytes: &[u8]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    if v.first().is_some_and(|b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    der(0x02, &v)
}

/// An RSA SubjectPublicKeyInfo (RFC 3279 §2.3.1) with any modulus and exponent.
fn rsa_spki(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
    let key = der(0x30, &[integer(modulus), integer(exponent)].concat());
    let rsa_encryption = der(
        0x06,
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
    );
    let algorithm = der(0x30, &[rsa_encryption, vec![0x05, 0x00]].concat());
    let bits = der(0x03, &[vec![0x00], key].concat());
    der(0x30, &[algorithm, bits].concat())
}

/// A modulus of exactly `bits` bits, odd unless `even`.
fn modulus(bits: usize, even: bool) -> Vec<u8> {
    let mut m = vec![0x55u8; bits.div_ceil(8)];
    let top = (bits - 1) % 8;
    m[0] = (1u8 << top) | (0x55 & ((1u8 << top) - 1));
    let last = m.len() - 1;
    if even {
        m[last] &= 0xfe;
    } else {
        m[last] |= 1;
    }
    m
}

const F4: &[u8] = &[0x01, 0x00, 0x01];

/// The chain's refusals for a CSR whose key facts are replaced by those of `spki`.
fn refusals_for_spki(chain: &super::super::Chain, spki: &[u8]) -> Vec<String> {
    let csr = csr(&params(None, &["dns:a.example.com"]));
    let mut facts = CsrFacts::from_der(&csr.der).unwrap();
    facts.public_key = PublicKeyFacts::from_spki(spki).unwrap();
    facts.spki_der = spki.to_vec();
    match chain.check_csr_facts(&csr, &facts, &Requester::default()) {
        Ok(()) => Vec::new(),
        Err(r) => r.0.iter().map(ToString::to_string).collect(),
    }
}

const DEFAULT: &str = "[[validators]]\nname = \"key_policy\"\n";
const ALLOWED: &str = "allowed: RSA 2048–4096 bits, ECDSA P-256, ECDSA P-384, Ed25519";

#[test]
fn rsa_table() {
    let chain = chain(DEFAULT);
    let cases: Vec<(&str, Vec<u8>, Vec<String>)> = vec![
        ("2048 bits, e = 65537", rsa_spki(&modulus(2048, false), F4), vec![]),
        ("4096 bits", rsa_spki(&modulus(4096, false), F4), vec![]),
        (
            "1024 bits",
            rsa_spki(&modulus(1024, false), F4),
            vec!["rule key_policy refused the public key: an RSA key of 1024 bits is outside the allowed 2048–4096 bits".to_owned()],
        ),
        (
            "8192 bits",
            rsa_spki(&modulus(8192, false), F4),
            vec!["rule key_policy refused the public key: an RSA key of 8192 bits is outside the allowed 2048–4096 bits".to_owned()],
        ),
        (
            "2052 bits",
            rsa_spki(&modulus(2052, false), F4),
            vec!["rule key_policy refused the public key: an RSA modulus of 2052 bits is not a multiple of 8 bits (Baseline Requirements §6.1.5)".to_owned()],
        ),
        (
            "even modulus",
            rsa_spki(&modulus(2048, true), F4),
            vec!["rule key_policy refused the public key: the RSA modulus is even".to_owned()],
        ),
        (
            "e = 3",
            rsa_spki(&modulus(2048, false), &[3]),
            vec!["rule key_policy refused the public key: the RSA public exponent 3 is below 65537".to_owned()],
        ),
        (
            "e = 65538",
            rsa_spki(&modulus(2048, false), &[0x01, 0x00, 0x02]),
            vec!["rule key_policy refused the public key: the RSA public exponent 65538 is even".to_owned()],
        ),
        (
            "e = 2^32 + 1",
            rsa_spki(&modulus(2048, false), &[0x01, 0, 0, 0, 0x01]),
            vec![],
        ),
        (
            "e longer than 256 bits",
            rsa_spki(&modulus(2048, false), &[0x01; 33]),
            vec!["rule key_policy refused the public key: the RSA public exponent is longer than 256 bits (Baseline Requirements §6.1.6)".to_owned()],
        ),
    ];
    for (name, spki, want) in cases {
        assert_eq!(refusals_for_spki(&chain, &spki), want, "{name}");
    }
}

fn real_csr_refusals(chain: &super::super::Chain, key: &KeyPair) -> Vec<String> {
    let csr = csr_with(&params(None, &["dns:a.example.com"]), key);
    at_csr(chain, &csr, &Requester::default())
}

fn generate(alg: &'static SignatureAlgorithm) -> KeyPair {
    KeyPair::generate_for(alg).unwrap()
}

#[test]
fn real_keys() {
    let chain = chain(DEFAULT);
    let cases: Vec<(&str, KeyPair, Vec<String>)> = vec![
        ("P-256", generate(&rcgen::PKCS_ECDSA_P256_SHA256), vec![]),
        ("P-384", generate(&rcgen::PKCS_ECDSA_P384_SHA384), vec![]),
        ("Ed25519", generate(&rcgen::PKCS_ED25519), vec![]),
        (
            "RSA 2048",
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048).unwrap(),
            vec![],
        ),
    ];
    for (name, key, want) in cases {
        assert_eq!(real_csr_refusals(&chain, &key), want, "{name}");
    }
    // x509-parser cannot verify a P-521 CSR's signature, so `ParsedCsr` refuses one before
    // policy runs; the rule still knows the curve.
    let p521 = generate(&rcgen::PKCS_ECDSA_P521_SHA512);
    assert_eq!(
        refusals_for_spki(
            &chain,
            &rcgen::PublicKeyData::subject_public_key_info(&p521)
        ),
        [format!(
            "rule key_policy refused the public key: ECDSA P-521 keys are not allowed ({ALLOWED})"
        )]
    );
}

#[test]
fn narrowed_policy_and_blocked_keys() {
    let blocked = generate(&rcgen::PKCS_ECDSA_P256_SHA256);
    let fingerprint = hex(digest(
        &SHA256,
        &rcgen::PublicKeyData::subject_public_key_info(&blocked),
    )
    .as_ref());
    let chain = chain(&format!(
        "[[validators]]\nname = \"key_policy\"\nallowed_keys = [\"ecdsa_p256\"]\nblocked_spki_sha256 = [\"{fingerprint}\"]\n"
    ));
    assert_eq!(
        real_csr_refusals(&chain, &blocked),
        [format!(
            "rule key_policy refused the public key: it is a known-compromised key (SubjectPublicKeyInfo SHA-256 {fingerprint})"
        )]
    );
    assert!(real_csr_refusals(&chain, &generate(&rcgen::PKCS_ECDSA_P256_SHA256)).is_empty());
    assert_eq!(
        real_csr_refusals(&chain, &generate(&rcgen::PKCS_ED25519)),
        [
            "rule key_policy refused the public key: Ed25519 keys are not allowed (allowed: ECDSA P-256)"
        ]
    );
}

#[test]
fn refusals_are_bad_public_key() {
    let chain = chain(DEFAULT);
    let csr = csr(&params(None, &["dns:a.example.com"]));
    let mut facts = CsrFacts::from_der(&csr.der).unwrap();
    facts.public_key = PublicKeyFacts::from_spki(&rsa_spki(&modulus(1024, false), F4)).unwrap();
    let problem = chain
        .check_csr_facts(&csr, &facts, &Requester::default())
        .unwrap_err()
        .to_problem();
    assert_eq!(problem.kind, crate::acme::ProblemType::BadPublicKey);
    assert_eq!(problem.identifier, None);
}
