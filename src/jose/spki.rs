//! The JWK of a DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7), so that a CSR key can be compared
//! with account keys by thumbprint (RFC 8555 §11.1: a certificate key must not be an account key).

use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::{JoseError, Jwk, base64url};

impl Jwk {
    /// The JWK of a SubjectPublicKeyInfo (DER), to compare a CSR key with account keys. The
    /// result is validated, and encoded as a client would send it, so thumbprints match.
    pub fn from_spki(spki_der: &[u8]) -> Result<Jwk, JoseError> {
        let bad = |why: &str| JoseError::BadKey(format!("the public key is not usable: {why}"));
        let (rest, spki) = SubjectPublicKeyInfo::from_der(spki_der)
            .map_err(|_| bad("not a DER SubjectPublicKeyInfo"))?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes after the SubjectPublicKeyInfo"));
        }
        let algorithm = &spki.algorithm.algorithm;
        let key_bytes: &[u8] = &spki.subject_public_key.data;
        let jwk = if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
            // RFC 5480 §2.1.1: the curve is named in the parameters.
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|parameters| parameters.as_oid().ok())
                .ok_or_else(|| bad("the EC key names no curve"))?;
            let (crv, size) = if curve == OID_EC_P256 {
                ("P-256", 32)
            } else if curve == OID_NIST_EC_P384 {
                ("P-384", 48)
            } else {
                return Err(bad(&format!(
                    "unsupported curve {curve}; supported: P-256, P-384"
                )));
            };
            // SEC 1 §2.3.3: only the uncompressed form 0x04 || x || y.
            match key_bytes.split_first() {
                Some((0x04, point)) if point.len() == 2 * size => {
                    let (x, y) = point.split_at(size);
                    Jwk::Ec {
                        crv: crv.into(),
                        x: base64url(x),
                        y: base64url(y),
                    }
                }
                _ => return Err(bad("the EC point is not uncompressed")),
            }
        } else if *algorithm == OID_PKCS1_RSAENCRYPTION {
            let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
                return Err(bad("the RSA key does not parse"));
            };
            // RFC 7518 §6.3.1: minimum octets, as clients send them.
            Jwk::Rsa {
                n: base64url(strip_leading_zeros(rsa.modulus)),
                e: base64url(strip_leading_zeros(rsa.exponent)),
            }
        } else if *algorithm == OID_SIG_ED25519 {
            // RFC 8410 §3: no parameters, a 32-byte key.
            if spki.algorithm.parameters.is_some() || key_bytes.len() != 32 {
                return Err(bad("the Ed25519 key is malformed"));
            }
            Jwk::Okp {
                crv: "Ed25519".into(),
                x: base64url(key_bytes),
            }
        } else {
            return Err(bad(&format!(
                "unsupported key algorithm {algorithm}; supported: EC P-256, EC P-384, RSA, Ed25519"
            )));
        };
        jwk.validate()?;
        Ok(jwk)
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::SigningKey;

    #[test]
    fn from_spki_matches_the_client_jwk() {
        let cases = [
            ("p-256", SigningKey::generate_p256()),
            ("p-384", SigningKey::generate_p384()),
            ("ed25519", SigningKey::generate_ed25519()),
            ("rsa 2048", SigningKey::generate_rsa2048()),
        ];
        for (name, key) in cases {
            let from_spki = Jwk::from_spki(&key.spki_der()).expect(name);
            assert_eq!(from_spki, key.jwk(), "{name}");
            assert_eq!(from_spki.thumbprint(), key.jwk().thumbprint(), "{name}");
        }
    }

    #[test]
    fn from_spki_refuses() {
        use aws_lc_rs::encoding::AsDer as _;
        use rcgen::PublicKeyData as _;

        let mut trailing = SigningKey::generate_p256().spki_der();
        trailing.push(0);
        let p521 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512)
            .expect("P-521 key")
            .subject_public_key_info();
        let mut n = vec![0xff_u8; 128];
        n[127] = 0xfb;
        let rsa_1024 = aws_lc_rs::rsa::PublicKeyComponents {
            n,
            e: vec![1, 0, 1],
        }
        .as_der()
        .expect("SPKI")
        .as_ref()
        .to_vec();
        let cases: [(&str, Vec<u8>, &str); 5] = [
            ("not der", b"hello".to_vec(), "not a DER"),
            ("trailing bytes", trailing, "trailing bytes"),
            ("empty", Vec::new(), "not a DER"),
            ("p-521", p521, "unsupported curve"),
            ("rsa 1024", rsa_1024, "1024 bits"),
        ];
        for (name, der, fragment) in cases {
            match Jwk::from_spki(&der) {
                Err(JoseError::BadKey(message)) => {
                    assert!(message.contains(fragment), "{name}: {message}")
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn strip_leading_zeros_cases() {
        assert_eq!(strip_leading_zeros(&[0, 0, 1, 0]), &[1, 0]);
        assert_eq!(strip_leading_zeros(&[0x80]), &[0x80]);
        assert_eq!(strip_leading_zeros(&[0, 0]), &[] as &[u8]);
    }
}
