//! The client side of JOSE: account keys and flattened JWS (RFC 8555 §6.2), for tests and tools
//! that play an ACME client. Key generation and signing panic only if the system RNG fails.

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair,
};
use serde_json::{Value, json};

use super::{JoseError, Jwk, base64url};

/// A private key that signs JWS with the one algorithm its type allows.
pub enum SigningKey {
    /// ES256.
    EcP256(EcdsaKeyPair),
    /// ES384.
    EcP384(EcdsaKeyPair),
    /// EdDSA.
    Ed25519(Ed25519KeyPair),
    /// RS256.
    Rsa(RsaKeyPair),
}

/// How the protected header names the key (RFC 8555 §6.2): the whole `jwk` (newAccount,
/// revocation by certificate key, the inner key-change JWS) or the account URL as `kid`.
#[derive(Clone, Copy, Debug)]
pub enum KeyRef<'a> {
    Jwk,
    Kid(&'a str),
}

const RNG_FAILED: &str = "the system random number generator failed";

impl SigningKey {
    pub fn generate_p256() -> Self {
        SigningKey::EcP256(
            EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect(RNG_FAILED),
        )
    }

    pub fn generate_p384() -> Self {
        SigningKey::EcP384(
            EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).expect(RNG_FAILED),
        )
    }

    pub fn generate_ed25519() -> Self {
        SigningKey::Ed25519(Ed25519KeyPair::generate().expect(RNG_FAILED))
    }

    pub fn generate_rsa2048() -> Self {
        SigningKey::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).expect(RNG_FAILED))
    }

    /// Loads a PKCS#8 private key (as written by [`SigningKey::pkcs8_der`]).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, JoseError> {
        if let Ok(key) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der) {
            return Ok(SigningKey::EcP256(key));
        }
        if let Ok(key) = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, der) {
            return Ok(SigningKey::EcP384(key));
        }
        if let Ok(key) = Ed25519KeyPair::from_pkcs8(der) {
            return Ok(SigningKey::Ed25519(key));
        }
        RsaKeyPair::from_pkcs8(der)
            .map(SigningKey::Rsa)
            .map_err(|_| {
                JoseError::BadKey("not a PKCS#8 P-256, P-384, Ed25519 or RSA private key".into())
            })
    }

    /// The JWS `alg` this key signs with.
    pub fn alg(&self) -> &'static str {
        match self {
            SigningKey::EcP256(_) => "ES256",
            SigningKey::EcP384(_) => "ES384",
            SigningKey::Ed25519(_) => "EdDSA",
            SigningKey::Rsa(_) => "RS256",
        }
    }

    /// The public key as a client sends it: RFC 7518 §6.2.1 (EC), §6.3.1 (RSA, minimum
    /// octets), RFC 8037 §2 (OKP).
    pub fn jwk(&self) -> Jwk {
        match self {
            SigningKey::EcP256(key) | SigningKey::EcP384(key) => {
                // Uncompressed point: 0x04 || x || y.
                let point = key.public_key().as_ref();
                let (x, y) = point[1..].split_at((point.len() - 1) / 2);
                let crv = if matches!(self, SigningKey::EcP256(_)) {
                    "P-256"
                } else {
                    "P-384"
                };
                Jwk::Ec {
                    crv: crv.into(),
                    x: base64url(x),
                    y: base64url(y),
                }
            }
            SigningKey::Ed25519(key) => Jwk::Okp {
                crv: "Ed25519".into(),
                x: base64url(key.public_key().as_ref()),
            },
            SigningKey::Rsa(key) => {
                let public = key.public_key();
                Jwk::Rsa {
                    n: base64url(public.modulus().big_endian_without_leading_zero()),
                    e: base64url(public.exponent().big_endian_without_leading_zero()),
                }
            }
        }
    }

    /// Signs `message` with [`SigningKey::alg`]; ECDSA signatures are in the fixed-width
    /// `r || s` form of RFC 7518 §3.4.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            SigningKey::EcP256(key) | SigningKey::EcP384(key) => {
                key.sign(&rng, message).expect(RNG_FAILED).as_ref().to_vec()
            }
            SigningKey::Ed25519(key) => key.sign(message).as_ref().to_vec(),
            SigningKey::Rsa(key) => {
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .expect(RNG_FAILED);
                signature
            }
        }
    }

    /// The public key as a DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7).
    pub fn spki_der(&self) -> Vec<u8> {
        let der = match self {
            SigningKey::EcP256(key) | SigningKey::EcP384(key) => key.public_key().as_der(),
            SigningKey::Ed25519(key) => key.public_key().as_der(),
            SigningKey::Rsa(key) => key.public_key().as_der(),
        };
        der.expect("a generated public key encodes")
            .as_ref()
            .to_vec()
    }

    /// The private key as PKCS#8 v1 DER (RFC 5208), which `rcgen::KeyPair::try_from` reads.
    pub fn pkcs8_der(&self) -> Vec<u8> {
        let der = match self {
            SigningKey::EcP256(key) | SigningKey::EcP384(key) => {
                key.to_pkcs8v1().map(|doc| doc.as_ref().to_vec())
            }
            SigningKey::Ed25519(key) => key.to_pkcs8v1().map(|doc| doc.as_ref().to_vec()),
            SigningKey::Rsa(key) => key.as_der().map(|der| der.as_ref().to_vec()),
        };
        der.expect("a generated private key encodes")
    }

    /// The same key for rcgen, to build a CSR (or a certificate) with it.
    pub fn rcgen_key_pair(&self) -> Result<rcgen::KeyPair, rcgen::Error> {
        rcgen::KeyPair::try_from(self.pkcs8_der())
    }
}

impl fmt::Debug for SigningKey {
    /// Never shows the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg())
            .field("thumbprint", &self.jwk().thumbprint())
            .finish()
    }
}

/// A flattened JWS as an ACME client sends it (RFC 8555 §6.2). `payload: None` is
/// POST-as-GET (an empty payload, §6.3). `nonce: None` leaves `nonce` out, as the inner
/// key-change JWS does (§7.3.5).
pub fn sign_jws(
    key: &SigningKey,
    key_ref: KeyRef<'_>,
    nonce: Option<&str>,
    url: &str,
    payload: Option<&Value>,
) -> Value {
    let mut header = json!({"alg": key.alg(), "url": url});
    match key_ref {
        KeyRef::Jwk => header["jwk"] = json!(key.jwk()),
        KeyRef::Kid(kid) => header["kid"] = json!(kid),
    }
    if let Some(nonce) = nonce {
        header["nonce"] = json!(nonce);
    }
    let payload = payload
        .map(|p| p.to_string().into_bytes())
        .unwrap_or_default();
    sign_jws_raw(key, header, &payload)
}

/// A flattened JWS with any protected header, even one ACME refuses (tests craft malformed
/// requests with it). The signature always comes from `key`, whatever `alg` claims.
pub fn sign_jws_raw(key: &SigningKey, protected_header: Value, payload: &[u8]) -> Value {
    let protected = base64url(protected_header.to_string().as_bytes());
    let payload = base64url(payload);
    let signature = key.sign(format!("{protected}.{payload}").as_bytes());
    json!({"protected": protected, "payload": payload, "signature": base64url(&signature)})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_keys() -> [(&'static str, SigningKey); 4] {
        [
            ("ES256", SigningKey::generate_p256()),
            ("ES384", SigningKey::generate_p384()),
            ("EdDSA", SigningKey::generate_ed25519()),
            ("RS256", SigningKey::generate_rsa2048()),
        ]
    }

    #[test]
    fn keys_report_their_algorithm_and_a_valid_jwk() {
        for (alg, key) in all_keys() {
            assert_eq!(key.alg(), alg);
            assert_eq!(key.jwk().algorithm(), Ok(alg));
            assert_eq!(key.jwk().validate(), Ok(()), "{alg}");
        }
    }

    #[test]
    fn pkcs8_round_trip() {
        for (alg, key) in all_keys() {
            let loaded = SigningKey::from_pkcs8(&key.pkcs8_der()).expect(alg);
            assert_eq!(loaded.alg(), alg);
            assert_eq!(loaded.jwk(), key.jwk(), "{alg}");
        }
        assert!(matches!(
            SigningKey::from_pkcs8(b"junk"),
            Err(JoseError::BadKey(_))
        ));
    }

    #[test]
    fn rcgen_sees_the_same_public_key() {
        for (alg, key) in all_keys() {
            use rcgen::PublicKeyData as _;
            let rcgen_key = key.rcgen_key_pair().expect(alg);
            assert_eq!(rcgen_key.subject_public_key_info(), key.spki_der(), "{alg}");
        }
    }

    #[test]
    fn ecdsa_signatures_are_fixed_width() {
        let cases = [
            (SigningKey::generate_p256(), 64),
            (SigningKey::generate_p384(), 96),
        ];
        for (key, length) in cases {
            assert_eq!(key.sign(b"m").len(), length, "{}", key.alg());
        }
    }

    #[test]
    fn sign_jws_header_members() {
        let key = SigningKey::generate_p256();
        let cases = [
            (
                "jwk, nonce",
                KeyRef::Jwk,
                Some("n1"),
                vec!["alg", "jwk", "nonce", "url"],
            ),
            (
                "kid, nonce",
                KeyRef::Kid("acct"),
                Some("n1"),
                vec!["alg", "kid", "nonce", "url"],
            ),
            (
                "jwk, no nonce",
                KeyRef::Jwk,
                None,
                vec!["alg", "jwk", "url"],
            ),
        ];
        for (name, key_ref, nonce, members) in cases {
            let jws = sign_jws(&key, key_ref, nonce, "https://ca/x", None);
            let protected = jws["protected"].as_str().unwrap_or_default();
            let header: Value = serde_json::from_slice(
                &crate::jose::base64url_decode(protected).expect("base64url"),
            )
            .expect("JSON header");
            let mut names: Vec<&str> = header
                .as_object()
                .expect("object")
                .keys()
                .map(String::as_str)
                .collect();
            names.sort_unstable();
            assert_eq!(names, members, "{name}");
        }
    }

    #[test]
    fn debug_hides_the_private_key() {
        let key = SigningKey::generate_ed25519();
        let debug = format!("{key:?}");
        assert!(
            debug.contains("EdDSA") && debug.contains(&key.jwk().thumbprint()),
            "{debug}"
        );
    }
}
