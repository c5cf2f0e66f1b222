//! Private keys as JWKs (RFC 7518 §6.2.2 and §6.3.2, RFC 8037 §2): how a JWK provisioner's key
//! is kept (inside a PBES2 JWE, [`super::jwe`]) and read back by `mayfly token`. [`Jwk`] stays
//! public-only: a request never carries a private key, and it refuses one.

use aws_lc_rs::encoding::{AsBigEndian as _, AsDer as _};
use aws_lc_rs::rsa::{KeyPairComponents, PublicKeyComponents};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    RsaKeyPair,
};
use serde_json::{Map, Value};

use super::{JoseError, Jwk, SigningKey, base64url, base64url_decode};

/// The private members each key type has; `oth` (multi-prime RSA) is refused.
const EC_PRIVATE: [&str; 1] = ["d"];
const RSA_PRIVATE: [&str; 6] = ["d", "p", "q", "dp", "dq", "qi"];

impl SigningKey {
    /// Reads a private JWK: an EC P-256 or P-384 key (`d`), an OKP Ed25519 key (`d`, the seed)
    /// or a two-prime RSA key (`d`, `p`, `q`, `dp`, `dq`, `qi`). The public members must match
    /// the private ones. Other members (`kid`, `alg`, `use`) are ignored.
    pub fn from_private_jwk(value: &Value) -> Result<SigningKey, JoseError> {
        let Value::Object(members) = value else {
            return Err(JoseError::BadKey("the JWK is not a JSON object".into()));
        };
        if !members.contains_key("d") {
            return Err(JoseError::BadKey(
                "the JWK has no private member \"d\": it is a public key".into(),
            ));
        }
        if members.contains_key("oth") {
            return Err(JoseError::BadKey(
                "multi-prime RSA keys (\"oth\") are not supported".into(),
            ));
        }
        let private_names: &[&str] = match members.get("kty").and_then(Value::as_str) {
            Some("RSA") => &RSA_PRIVATE,
            _ => &EC_PRIVATE,
        };
        let mut public = members.clone();
        let mut private = Map::new();
        for name in private_names {
            match public.remove(*name) {
                Some(Value::String(text)) => {
                    private.insert((*name).to_owned(), Value::String(text));
                }
                Some(_) => {
                    return Err(JoseError::BadKey(format!(
                        "the JWK member {name:?} is not a string"
                    )));
                }
                None => {
                    return Err(JoseError::BadKey(format!(
                        "the private JWK has no {name:?} member"
                    )));
                }
            }
        }
        let jwk = Jwk::parse(&Value::Object(public))?;
        let member = |name: &str| {
            let text = private
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default();
            base64url_decode(text)
                .map_err(|_| JoseError::BadKey(format!("the JWK member {name:?} is not base64url")))
        };
        let mismatch =
            |_| JoseError::BadKey("the private key does not match the JWK's public members".into());
        let d = member("d")?;
        match &jwk {
            Jwk::Ec { crv, x, y } => {
                let (size, algorithm) = if crv == "P-256" {
                    (32, &ECDSA_P256_SHA256_FIXED_SIGNING)
                } else {
                    (48, &ECDSA_P384_SHA384_FIXED_SIGNING)
                };
                // RFC 7518 §6.2.2.1: d is the full coordinate length.
                if d.len() != size {
                    return Err(JoseError::BadKey(format!(
                        "the JWK member \"d\" has {} bytes; {crv} needs {size}",
                        d.len()
                    )));
                }
                let decode = |text: &str| base64url_decode(text).unwrap_or_default();
                let point = [&[0x04][..], &decode(x), &decode(y)].concat();
                let key = EcdsaKeyPair::from_private_key_and_public_key(algorithm, &d, &point)
                    .map_err(mismatch)?;
                Ok(if crv == "P-256" {
                    SigningKey::EcP256(key)
                } else {
                    SigningKey::EcP384(key)
                })
            }
            Jwk::Okp { x, .. } => {
                if d.len() != 32 {
                    return Err(JoseError::BadKey(format!(
                        "the JWK member \"d\" has {} bytes; Ed25519 needs 32",
                        d.len()
                    )));
                }
                let x = base64url_decode(x).unwrap_or_default();
                Ed25519KeyPair::from_seed_and_public_key(&d, &x)
                    .map(SigningKey::Ed25519)
                    .map_err(mismatch)
            }
            Jwk::Rsa { n, e } => {
                let components = KeyPairComponents {
                    public_key: PublicKeyComponents {
                        n: base64url_decode(n).unwrap_or_default(),
                        e: base64url_decode(e).unwrap_or_default(),
                    },
                    d,
                    p: member("p")?,
                    q: member("q")?,
                    dP: member("dp")?,
                    dQ: member("dq")?,
                    qInv: member("qi")?,
                };
                RsaKeyPair::from_components(&components)
                    .map(SigningKey::Rsa)
                    .map_err(mismatch)
            }
        }
    }

    /// The private key as a JWK: the public members of [`SigningKey::jwk`] plus `d` (and, for
    /// RSA, `p`, `q`, `dp`, `dq`, `qi`). Keep it secret: `mayfly provisioner jwk-create` writes
    /// it only inside a JWE.
    pub fn private_jwk(&self) -> Map<String, Value> {
        let Ok(Value::Object(mut members)) = serde_json::to_value(self.jwk()) else {
            unreachable!("a JWK serialises to an object");
        };
        let mut add = |name: &str, bytes: &[u8]| {
            members.insert(name.to_owned(), Value::String(base64url(bytes)));
        };
        const ENCODES: &str = "a generated or loaded private key encodes";
        match self {
            SigningKey::EcP256(key) | SigningKey::EcP384(key) => {
                let d = key.private_key().as_be_bytes().expect(ENCODES);
                add("d", d.as_ref());
            }
            SigningKey::Ed25519(key) => {
                let seed = key.seed().and_then(|s| s.as_be_bytes()).expect(ENCODES);
                add("d", seed.as_ref());
            }
            SigningKey::Rsa(key) => {
                let der = key.as_der().expect(ENCODES);
                let integers = rsa_private_integers(der.as_ref()).expect(ENCODES);
                // RSAPrivateKey (RFC 8017 §A.1.2): version, n, e, d, p, q, dP, dQ, qInv.
                for (name, integer) in ["d", "p", "q", "dp", "dq", "qi"].iter().zip(&integers[3..])
                {
                    add(name, integer);
                }
            }
        }
        members
    }
}

/// The nine INTEGERs of the RSAPrivateKey inside a PKCS#8 PrivateKeyInfo (RFC 5208 §5), as
/// aws-lc-rs writes it, without leading zero octets (RFC 7518 §6.3: minimum octets).
fn rsa_private_integers(pkcs8: &[u8]) -> Option<Vec<&[u8]>> {
    const SEQUENCE: u8 = 0x30;
    const INTEGER: u8 = 0x02;
    const OCTET_STRING: u8 = 0x04;
    let (tag, info, _) = der_element(pkcs8)?;
    if tag != SEQUENCE {
        return None;
    }
    let (_version, rest) = expect_tag(info, INTEGER)?;
    let (_algorithm, rest) = expect_tag(rest, SEQUENCE)?;
    let (private_key, _) = expect_tag(rest, OCTET_STRING)?;
    let (mut rest, _) = expect_tag(private_key, SEQUENCE)?;
    let mut integers = Vec::with_capacity(9);
    while !rest.is_empty() {
        let (integer, next) = expect_tag(rest, INTEGER)?;
        let first_nonzero = integer
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(integer.len());
        integers.push(&integer[first_nonzero..]);
        rest = next;
    }
    (integers.len() == 9).then_some(integers)
}

fn expect_tag(input: &[u8], expected: u8) -> Option<(&[u8], &[u8])> {
    let (tag, content, rest) = der_element(input)?;
    (tag == expected).then_some((content, rest))
}

/// One DER TLV: (tag, content, what follows). Lengths up to three octets (16 MiB).
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > 3 || rest.len() < octets {
            return None;
        }
        let length = rest[..octets]
            .iter()
            .fold(0usize, |n, b| (n << 8) | usize::from(*b));
        (length, &rest[octets..])
    };
    (rest.len() >= length).then(|| (tag, &rest[..length], &rest[length..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn all_keys() -> [(&'static str, SigningKey); 4] {
        [
            ("ES256", SigningKey::generate_p256()),
            ("ES384", SigningKey::generate_p384()),
            ("EdDSA", SigningKey::generate_ed25519()),
            ("RS256", SigningKey::generate_rsa2048()),
        ]
    }

    #[test]
    fn round_trip_signs_the_same() {
        for (alg, key) in all_keys() {
            let private = Value::Object(key.private_jwk());
            let loaded = SigningKey::from_private_jwk(&private).expect(alg);
            assert_eq!(loaded.alg(), alg);
            assert_eq!(loaded.jwk(), key.jwk(), "{alg}");
            let signature = loaded.sign(b"message");
            assert_eq!(
                key.jwk().verify(alg, b"message", &signature),
                Ok(()),
                "{alg}"
            );
            // The public part alone is refused as a private key, and the private JWK is
            // refused as a public one.
            let public = serde_json::to_value(key.jwk()).expect("json");
            assert!(SigningKey::from_private_jwk(&public).is_err(), "{alg}");
            assert!(Jwk::parse(&private).is_err(), "{alg}");
        }
    }

    #[test]
    fn rsa_members_are_minimal() {
        let key = SigningKey::generate_rsa2048();
        let private = key.private_jwk();
        for name in RSA_PRIVATE {
            let bytes = base64url_decode(private[name].as_str().expect("string")).expect("b64");
            assert_ne!(bytes.first(), Some(&0), "{name} has a leading zero");
        }
    }

    /// Private JWKs written by jwcrypto (testdata/jwe/make_fixtures.py).
    #[test]
    fn jwcrypto_keys_load() {
        let cases = [
            (
                "ES256",
                include_str!("../../testdata/jwe/p256-hs256-a256gcm.jwk.json"),
            ),
            (
                "EdDSA",
                include_str!("../../testdata/jwe/ed25519-hs384-a192gcm.jwk.json"),
            ),
            (
                "RS256",
                include_str!("../../testdata/jwe/rsa2048-hs512-a128gcm.jwk.json"),
            ),
        ];
        for (alg, text) in cases {
            let value: Value = serde_json::from_str(text).expect("json");
            let key = SigningKey::from_private_jwk(&value).expect(alg);
            assert_eq!(key.alg(), alg);
            // jwcrypto's kid is the RFC 7638 thumbprint.
            assert_eq!(Some(key.jwk().thumbprint().as_str()), value["kid"].as_str());
        }
    }

    #[test]
    fn bad_private_jwks_are_refused() {
        let p256 = Value::Object(SigningKey::generate_p256().private_jwk());
        let other_p256 = Value::Object(SigningKey::generate_p256().private_jwk());
        let ed = Value::Object(SigningKey::generate_ed25519().private_jwk());
        let rsa = Value::Object(SigningKey::generate_rsa2048().private_jwk());
        let with = |base: &Value, name: &str, member: Value| {
            let mut v = base.clone();
            v[name] = member;
            v
        };
        let without = |base: &Value, name: &str| {
            let mut v = base.clone();
            v.as_object_mut().map(|o| o.remove(name));
            v
        };
        let cases: Vec<(&str, Value, &str)> = vec![
            ("not an object", json!("key"), "not a JSON object"),
            ("public only", without(&p256, "d"), "public key"),
            (
                "another key's d",
                with(&p256, "d", other_p256["d"].clone()),
                "does not match",
            ),
            ("short d", with(&p256, "d", json!("AAAA")), "needs 32"),
            (
                "d not base64url",
                with(&p256, "d", json!("A+A=")),
                "not base64url",
            ),
            ("d not a string", with(&p256, "d", json!(1)), "not a string"),
            ("ed25519 short d", with(&ed, "d", json!("AAAA")), "needs 32"),
            (
                "ed25519 another seed",
                with(&ed, "d", json!(base64url(&[1; 32]))),
                "does not match",
            ),
            ("rsa without p", without(&rsa, "p"), "no \"p\""),
            (
                "rsa inconsistent qi",
                with(&rsa, "qi", rsa["dp"].clone()),
                "does not match",
            ),
            (
                "rsa multi-prime",
                with(&rsa, "oth", json!([])),
                "multi-prime",
            ),
            (
                "p-521",
                with(&p256, "crv", json!("P-521")),
                "unsupported curve",
            ),
        ];
        for (name, value, fragment) in cases {
            match SigningKey::from_private_jwk(&value) {
                Err(JoseError::BadKey(message)) => {
                    assert!(message.contains(fragment), "{name}: {message}")
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
