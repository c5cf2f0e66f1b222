//! Public keys as JWKs (RFC 7517, RFC 7518 §6, RFC 8037): checks, RFC 7638 thumbprints and
//! signature verification with aws-lc-rs.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, ED25519, ParsedPublicKey,
    RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents, VerificationAlgorithm,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ALGORITHMS, JoseError, base64url, base64url_decode, supported_algorithms};

/// A public key as a JWK (RFC 7517). Only the members the thumbprint covers are kept; other
/// public members (`alg`, `use`, `kid`, …) are ignored.
///
/// Deserializing refuses private members (`d`, …) but does not run [`Jwk::validate`]: a key
/// that comes from a request must go through [`Jwk::parse`] (or `validate`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kty", try_from = "Map<String, Value>")]
pub enum Jwk {
    #[serde(rename = "EC")]
    Ec { crv: String, x: String, y: String },
    #[serde(rename = "RSA")]
    Rsa { n: String, e: String },
    #[serde(rename = "OKP")]
    Okp { crv: String, x: String },
}

/// Members that only a private key has: RFC 7518 §6.2.2 and §6.3.2, RFC 8037 §2, and `k` of a
/// symmetric key (§6.4). A client must never send them.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// RSA moduli outside this range are refused (RFC 8555 leaves the size to the server; aws-lc-rs
/// verifies 2048 to 8192 bits).
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 8192;

impl Jwk {
    /// Reads a JWK from a request (a header `jwk`, a key-change `oldKey`): refuses private
    /// members, then runs [`Jwk::validate`].
    pub fn parse(value: &Value) -> Result<Jwk, JoseError> {
        let Value::Object(members) = value else {
            return Err(JoseError::BadKey("the JWK is not a JSON object".into()));
        };
        let key = Jwk::from_members(members)?;
        key.validate()?;
        Ok(key)
    }

    /// Checks the key itself: known curve, coordinates of the right length on the curve, RSA
    /// modulus of 2048 to 8192 bits and an odd exponent above 1.
    pub fn validate(&self) -> Result<(), JoseError> {
        self.parsed_key().map(|_| ())
    }

    /// The algorithm this key signs with: one per key type and curve (RFC 8555 §6.2).
    pub fn algorithm(&self) -> Result<&'static str, JoseError> {
        match self {
            Jwk::Ec { crv, .. } if crv == "P-256" => Ok("ES256"),
            Jwk::Ec { crv, .. } if crv == "P-384" => Ok("ES384"),
            Jwk::Rsa { .. } => Ok("RS256"),
            Jwk::Okp { crv, .. } if crv == "Ed25519" => Ok("EdDSA"),
            Jwk::Ec { crv, .. } | Jwk::Okp { crv, .. } => Err(unsupported_curve(crv)),
        }
    }

    /// RFC 7638 thumbprint: base64url(SHA-256(canonical JSON)). The canonical JSON holds only
    /// the required members, in lexicographic order, without whitespace (§3.2, §3.3).
    pub fn thumbprint(&self) -> String {
        let canonical = match self {
            Jwk::Ec { crv, x, y } => format!(
                r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
                json_string(crv),
                json_string(x),
                json_string(y)
            ),
            Jwk::Rsa { n, e } => format!(
                r#"{{"e":{},"kty":"RSA","n":{}}}"#,
                json_string(e),
                json_string(n)
            ),
            Jwk::Okp { crv, x } => format!(
                r#"{{"crv":{},"kty":"OKP","x":{}}}"#,
                json_string(crv),
                json_string(x)
            ),
        };
        base64url(digest(&SHA256, canonical.as_bytes()).as_ref())
    }

    /// Verifies `signature` over `signing_input` with `alg`, which must suit the key.
    pub fn verify(
        &self,
        alg: &str,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), JoseError> {
        if !ALGORITHMS.contains(&alg) {
            return Err(unsupported_algorithm(alg));
        }
        let key_alg = self.algorithm()?;
        if alg != key_alg {
            return Err(JoseError::BadAlgorithm(format!(
                "the JWS algorithm {alg} does not suit this {} key, which signs with {key_alg}",
                self.kind()
            )));
        }
        self.parsed_key()?
            .verify_sig(signing_input, signature)
            .map_err(|_| JoseError::BadSignature)
    }

    /// Builds the aws-lc-rs key, checking every member on the way.
    fn parsed_key(&self) -> Result<ParsedPublicKey, JoseError> {
        let rejected = |_| JoseError::BadKey(format!("the {} key is not valid", self.kind()));
        match self {
            Jwk::Ec { crv, x, y } => {
                let (size, algorithm): (usize, &'static dyn VerificationAlgorithm) =
                    match crv.as_str() {
                        "P-256" => (32, &ECDSA_P256_SHA256_FIXED),
                        "P-384" => (48, &ECDSA_P384_SHA384_FIXED),
                        _ => return Err(unsupported_curve(crv)),
                    };
                // RFC 7518 §6.2.1.2: coordinates are full length, leading zeros kept.
                let x = fixed_member("x", x, size, crv)?;
                let y = fixed_member("y", y, size, crv)?;
                let point = [&[0x04][..], &x, &y].concat();
                ParsedPublicKey::new(algorithm, point).map_err(rejected)
            }
            Jwk::Rsa { n, e } => {
                let n = integer_member("n", n)?;
                let e = integer_member("e", e)?;
                let bits = bit_length(&n);
                if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
                    return Err(JoseError::BadKey(format!(
                        "the RSA modulus has {bits} bits; {RSA_MIN_BITS} to {RSA_MAX_BITS} are accepted"
                    )));
                }
                let odd = e.last().is_some_and(|last| last & 1 == 1);
                if !odd || e == [1] {
                    return Err(JoseError::BadKey(
                        "the RSA exponent must be odd and above 1".into(),
                    ));
                }
                RsaPublicKeyComponents { n, e }
                    .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
                    .map_err(rejected)
            }
            Jwk::Okp { crv, x } => {
                if crv != "Ed25519" {
                    return Err(unsupported_curve(crv));
                }
                let x = fixed_member("x", x, 32, crv)?;
                ParsedPublicKey::new(&ED25519, x).map_err(rejected)
            }
        }
    }

    /// Reads the members of a JWK object; refuses private members and unknown key types.
    fn from_members(members: &Map<String, Value>) -> Result<Jwk, JoseError> {
        if let Some(private) = PRIVATE_MEMBERS.iter().find(|m| members.contains_key(**m)) {
            return Err(JoseError::BadKey(format!(
                "the JWK contains the private member {private:?}; send the public key only"
            )));
        }
        let member = |name: &str| match members.get(name) {
            Some(Value::String(text)) => Ok(text.clone()),
            Some(_) => Err(JoseError::BadKey(format!(
                "the JWK member {name:?} is not a string"
            ))),
            None => Err(JoseError::BadKey(format!("the JWK has no {name:?} member"))),
        };
        match member("kty")?.as_str() {
            "EC" => Ok(Jwk::Ec {
                crv: member("crv")?,
                x: member("x")?,
                y: member("y")?,
            }),
            "RSA" => Ok(Jwk::Rsa {
                n: member("n")?,
                e: member("e")?,
            }),
            "OKP" => Ok(Jwk::Okp {
                crv: member("crv")?,
                x: member("x")?,
            }),
            other => Err(JoseError::BadKey(format!(
                "unsupported key type {other:?}; supported: EC, RSA, OKP"
            ))),
        }
    }

    fn kind(&self) -> String {
        match self {
            Jwk::Ec { crv, .. } | Jwk::Okp { crv, .. } => crv.clone(),
            Jwk::Rsa { n, .. } => match base64url_decode(n) {
                Ok(n) => format!("RSA-{}", bit_length(&n)),
                Err(_) => "RSA".into(),
            },
        }
    }
}

impl TryFrom<Map<String, Value>> for Jwk {
    type Error = JoseError;

    fn try_from(members: Map<String, Value>) -> Result<Self, Self::Error> {
        Jwk::from_members(&members)
    }
}

/// The error for `alg` values outside [`ALGORITHMS`] (RFC 8555 §6.2: `badSignatureAlgorithm`).
pub(super) fn unsupported_algorithm(alg: &str) -> JoseError {
    let supported = supported_algorithms();
    let message = if alg == "none" {
        format!("the JWS algorithm \"none\" is not allowed (RFC 8555 §6.2); supported: {supported}")
    } else if alg.starts_with("HS") {
        format!("the MAC algorithm {alg:?} is not allowed (RFC 8555 §6.2); supported: {supported}")
    } else {
        format!("the JWS algorithm {alg:?} is not supported; supported: {supported}")
    };
    JoseError::BadAlgorithm(message)
}

fn unsupported_curve(crv: &str) -> JoseError {
    JoseError::BadKey(format!(
        "unsupported curve {crv:?}; supported: P-256, P-384, Ed25519"
    ))
}

fn decode_member(name: &str, text: &str) -> Result<Vec<u8>, JoseError> {
    base64url_decode(text)
        .map_err(|_| JoseError::BadKey(format!("the JWK member {name:?} is not base64url")))
}

fn fixed_member(name: &str, text: &str, size: usize, crv: &str) -> Result<Vec<u8>, JoseError> {
    let bytes = decode_member(name, text)?;
    if bytes.len() != size {
        return Err(JoseError::BadKey(format!(
            "the JWK member {name:?} has {} bytes; {crv} needs {size}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// RFC 7518 §6.3.1: RSA integers use the minimum number of octets.
fn integer_member(name: &str, text: &str) -> Result<Vec<u8>, JoseError> {
    let bytes = decode_member(name, text)?;
    match bytes.first() {
        None => Err(JoseError::BadKey(format!(
            "the JWK member {name:?} is empty"
        ))),
        Some(0) => Err(JoseError::BadKey(format!(
            "the JWK member {name:?} has a leading zero octet (RFC 7518 §6.3.1)"
        ))),
        Some(_) => Ok(bytes),
    }
}

/// The bit length of a big-endian unsigned integer without leading zero octets.
fn bit_length(bytes: &[u8]) -> usize {
    match bytes.first() {
        Some(first) => bytes.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

fn json_string(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::jose::SigningKey;
    use serde_json::json;

    /// The RSA key of RFC 7638 §3.1.
    pub(in crate::jose) fn rfc7638_key() -> Value {
        json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        })
    }

    fn rsa_with_bits(bits: usize) -> Value {
        let mut n = vec![0xff; bits / 8];
        n[bits / 8 - 1] = 0xfb; // odd, like a real modulus
        json!({"kty": "RSA", "n": base64url(&n), "e": "AQAB"})
    }

    #[test]
    fn rfc7638_thumbprint_vector() {
        let key = Jwk::parse(&rfc7638_key()).expect("valid JWK");
        assert_eq!(
            key.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn published_vectors() {
        // RFC 7515 Appendix A.3 (ES256, fixed-width r || s).
        let es256 = Jwk::parse(&json!({
            "kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
        }))
        .expect("RFC 7515 key");
        let es256_input = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        let es256_signature = "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
        // RFC 8037 Appendix A.2 to A.4 (Ed25519 key, thumbprint, EdDSA signature).
        let ed25519 = Jwk::parse(&json!({
            "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        }))
        .expect("RFC 8037 key");
        assert_eq!(
            ed25519.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
        let ed25519_input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
        let ed25519_signature = "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

        let cases = [
            (
                "rfc 7515 a.3",
                &es256,
                "ES256",
                es256_input,
                es256_signature,
            ),
            (
                "rfc 8037 a.4",
                &ed25519,
                "EdDSA",
                ed25519_input,
                ed25519_signature,
            ),
        ];
        for (name, key, alg, input, signature) in cases {
            let signature = base64url_decode(signature).expect("base64url");
            assert_eq!(
                key.verify(alg, input.as_bytes(), &signature),
                Ok(()),
                "{name}"
            );
        }
    }

    #[test]
    fn parse_and_validate() {
        let p256 = SigningKey::generate_p256().jwk();
        let Jwk::Ec { x, y, .. } = &p256 else {
            panic!("P-256 key is EC")
        };
        let ed = SigningKey::generate_ed25519().jwk();
        let Jwk::Okp { x: ed_x, .. } = &ed else {
            panic!("Ed25519 key is OKP")
        };
        let cases: Vec<(&str, Value, Result<(), &str>)> = vec![
            ("rfc 7638 rsa key with extra members", rfc7638_key(), Ok(())),
            (
                "generated p-256",
                serde_json::to_value(&p256).expect("json"),
                Ok(()),
            ),
            (
                "generated ed25519",
                serde_json::to_value(&ed).expect("json"),
                Ok(()),
            ),
            ("rsa 1024", rsa_with_bits(1024), Err("1024 bits")),
            ("rsa 2040", rsa_with_bits(2040), Err("2040 bits")),
            ("rsa 8200", rsa_with_bits(8200), Err("8200 bits")),
            (
                "rsa even exponent",
                json!({"kty": "RSA", "n": rsa_with_bits(2048)["n"], "e": "AQAA"}),
                Err("odd"),
            ),
            (
                "rsa exponent 1",
                json!({"kty": "RSA", "n": rsa_with_bits(2048)["n"], "e": "AQ"}),
                Err("odd"),
            ),
            (
                "rsa leading zero",
                json!({"kty": "RSA", "n": rsa_with_bits(2048)["n"], "e": "AAEAAQ"}),
                Err("leading zero"),
            ),
            (
                "private d",
                json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "d": "AAAA"}),
                Err("private member \"d\""),
            ),
            (
                "private rsa p",
                {
                    let mut k = rfc7638_key();
                    k["p"] = json!("AQ");
                    k
                },
                Err("private member \"p\""),
            ),
            (
                "unknown kty",
                json!({"kty": "oct", "k": "AAAA"}),
                Err("private member \"k\""),
            ),
            (
                "unknown kty without k",
                json!({"kty": "DSA"}),
                Err("unsupported key type"),
            ),
            (
                "missing kty",
                json!({"crv": "P-256", "x": x, "y": y}),
                Err("no \"kty\""),
            ),
            ("not an object", json!("key"), Err("not a JSON object")),
            (
                "p-521",
                json!({"kty": "EC", "crv": "P-521", "x": x, "y": y}),
                Err("unsupported curve"),
            ),
            (
                "short x",
                json!({"kty": "EC", "crv": "P-384", "x": x, "y": y}),
                Err("P-384 needs 48"),
            ),
            (
                "x padded",
                json!({"kty": "EC", "crv": "P-256", "x": format!("{x}="), "y": y}),
                Err("not base64url"),
            ),
            (
                "point not on curve",
                json!({"kty": "EC", "crv": "P-256", "x": y, "y": x}),
                Err("not valid"),
            ),
            (
                "x not a string",
                json!({"kty": "EC", "crv": "P-256", "x": 1, "y": y}),
                Err("not a string"),
            ),
            (
                "x25519",
                json!({"kty": "OKP", "crv": "X25519", "x": ed_x}),
                Err("unsupported curve"),
            ),
        ];
        for (name, value, expected) in cases {
            match (Jwk::parse(&value), expected) {
                (Ok(_), Ok(())) => {}
                (Err(JoseError::BadKey(message)), Err(fragment)) => {
                    assert!(message.contains(fragment), "{name}: {message}")
                }
                (got, expected) => panic!("{name}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn deserialize_refuses_private_members_and_keeps_known_ones() {
        let key: Jwk = serde_json::from_value(rfc7638_key()).expect("public JWK");
        assert!(matches!(key, Jwk::Rsa { .. }));
        let mut private = rfc7638_key();
        private["d"] = json!("AQAB");
        let error = serde_json::from_value::<Jwk>(private).expect_err("private JWK");
        assert!(error.to_string().contains("private member"), "{error}");
        // Serialising writes kty and the key members only.
        assert_eq!(
            serde_json::to_value(&key)
                .expect("json")
                .as_object()
                .map(|o| o.len()),
            Some(3)
        );
    }

    #[test]
    fn verify_checks_algorithm_against_key() {
        let keys = [
            SigningKey::generate_p256(),
            SigningKey::generate_p384(),
            SigningKey::generate_ed25519(),
            SigningKey::generate_rsa2048(),
        ];
        for key in &keys {
            let jwk = key.jwk();
            let signature = key.sign(b"message");
            assert_eq!(
                jwk.verify(key.alg(), b"message", &signature),
                Ok(()),
                "{}",
                key.alg()
            );
            assert_eq!(
                jwk.verify(key.alg(), b"massage", &signature),
                Err(JoseError::BadSignature),
                "{} tampered",
                key.alg()
            );
            for alg in ALGORITHMS.iter().chain(&["none", "HS256", "PS256"]) {
                if *alg == key.alg() {
                    continue;
                }
                assert!(
                    matches!(
                        jwk.verify(alg, b"message", &signature),
                        Err(JoseError::BadAlgorithm(_))
                    ),
                    "{alg} with a {} key",
                    key.alg()
                );
            }
        }
    }
}
