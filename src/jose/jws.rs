//! Flattened JSON JWS (RFC 7515 §7.2.2) with the rules of RFC 8555 §6.2: one signature, every
//! header member protected, `jwk` XOR `kid`, `url` required, no `none` or MAC algorithm.

use serde_json::{Map, Value};

use super::jwk::unsupported_algorithm;
use super::{ALGORITHMS, JoseError, Jwk, base64url_decode};

/// The protected header of an ACME JWS (RFC 8555 §6.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtectedHeader {
    pub alg: String,
    /// Exactly one of `jwk` and `kid` is set.
    pub key: KeyOrKeyId,
    pub nonce: Option<String>,
    pub url: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyOrKeyId {
    Jwk(Jwk),
    KeyId(String),
}

/// A flattened JWS whose structure parsed; its signature is not checked yet.
#[derive(Clone, Debug)]
pub struct ParsedJws {
    pub header: ProtectedHeader,
    /// The decoded payload; empty for POST-as-GET.
    pub payload: Vec<u8>,
    /// `protected || '.' || payload`, as signed.
    pub signing_input: Vec<u8>,
    pub signature: Vec<u8>,
}

/// The members of a flattened JWS that ACME allows (RFC 8555 §6.2 forbids the unprotected
/// `header`).
const MEMBERS: [&str; 3] = ["protected", "payload", "signature"];

impl ParsedJws {
    /// Parses a flattened JSON JWS. Refuses the general serialisation (`signatures`), an
    /// unprotected `header`, any `crit`, `alg` outside `ALGORITHMS` and a header with
    /// both or neither of `jwk` and `kid`.
    pub fn parse(body: &[u8]) -> Result<Self, JoseError> {
        let Ok(Value::Object(members)) = serde_json::from_slice::<Value>(body) else {
            return Err(malformed("the request body is not a JSON object"));
        };
        if members.contains_key("signatures") {
            return Err(malformed(
                "the general JWS serialisation (\"signatures\") is not allowed; use the flattened one (RFC 8555 §6.2)",
            ));
        }
        if members.contains_key("header") {
            return Err(malformed(
                "the unprotected JWS \"header\" is not allowed (RFC 8555 §6.2)",
            ));
        }
        if let Some(unknown) = members
            .keys()
            .find(|name| !MEMBERS.contains(&name.as_str()))
        {
            return Err(malformed(&format!("unknown JWS member {unknown:?}")));
        }
        let protected_b64 = string_member(&members, "protected")?;
        let payload_b64 = string_member(&members, "payload")?;
        let signature_b64 = string_member(&members, "signature")?;

        let header_bytes = decode(protected_b64, "protected")?;
        let Ok(Value::Object(header)) = serde_json::from_slice::<Value>(&header_bytes) else {
            return Err(malformed("the JWS protected header is not a JSON object"));
        };
        let header = parse_header(&header)?;
        let payload = decode(payload_b64, "payload")?;
        let signature = decode(signature_b64, "signature")?;
        let signing_input = [protected_b64.as_bytes(), b".", payload_b64.as_bytes()].concat();
        Ok(ParsedJws {
            header,
            payload,
            signing_input,
            signature,
        })
    }

    pub fn verify(&self, key: &Jwk) -> Result<(), JoseError> {
        key.verify(&self.header.alg, &self.signing_input, &self.signature)
    }
}

fn parse_header(header: &Map<String, Value>) -> Result<ProtectedHeader, JoseError> {
    // RFC 7515 §4.1.11: we understand no extension, so any `crit` must be refused.
    if header.contains_key("crit") {
        return Err(malformed("unsupported critical header (\"crit\")"));
    }
    // RFC 7797: an unencoded payload is an extension we do not support.
    match header.get("b64") {
        None | Some(Value::Bool(true)) => {}
        Some(_) => {
            return Err(malformed(
                "unencoded payloads (\"b64\": false) are not supported",
            ));
        }
    }
    let alg =
        header_string(header, "alg")?.ok_or_else(|| malformed("the JWS header has no \"alg\""))?;
    if !ALGORITHMS.contains(&alg.as_str()) {
        return Err(unsupported_algorithm(&alg));
    }
    let key = match (header.get("jwk"), header_string(header, "kid")?) {
        (Some(jwk), None) => KeyOrKeyId::Jwk(Jwk::parse(jwk)?),
        (None, Some(kid)) => KeyOrKeyId::KeyId(kid),
        (Some(_), Some(_)) => {
            return Err(malformed(
                "the JWS header has both \"jwk\" and \"kid\"; send exactly one",
            ));
        }
        (None, None) => {
            return Err(malformed(
                "the JWS header has neither \"jwk\" nor \"kid\"; send exactly one",
            ));
        }
    };
    let url =
        header_string(header, "url")?.ok_or_else(|| malformed("the JWS header has no \"url\""))?;
    let nonce = header_string(header, "nonce")?;
    Ok(ProtectedHeader {
        alg,
        key,
        nonce,
        url,
    })
}

fn header_string(header: &Map<String, Value>, name: &str) -> Result<Option<String>, JoseError> {
    match header.get(name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(malformed(&format!(
            "the JWS header member {name:?} is not a string"
        ))),
    }
}

fn string_member<'a>(members: &'a Map<String, Value>, name: &str) -> Result<&'a str, JoseError> {
    match members.get(name) {
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(malformed(&format!(
            "the JWS member {name:?} is not a string"
        ))),
        None => Err(malformed(&format!("the JWS has no {name:?} member"))),
    }
}

fn decode(text: &str, name: &str) -> Result<Vec<u8>, JoseError> {
    base64url_decode(text).map_err(|_| {
        malformed(&format!(
            "the JWS member {name:?} is not base64url without padding"
        ))
    })
}

fn malformed(message: &str) -> JoseError {
    JoseError::Malformed(message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::{KeyRef, SigningKey, base64url, sign_jws, sign_jws_raw};
    use serde_json::json;

    const URL: &str = "https://ca.example/acme/new-order";
    const KID: &str = "https://ca.example/acme/acct/1";

    fn parse(jws: &Value) -> Result<ParsedJws, JoseError> {
        ParsedJws::parse(jws.to_string().as_bytes())
    }

    #[test]
    fn round_trip_for_every_algorithm() {
        let payload = json!({"identifiers": [{"type": "dns", "value": "example.org"}]});
        let cases = [
            ("ES256", SigningKey::generate_p256()),
            ("ES384", SigningKey::generate_p384()),
            ("RS256", SigningKey::generate_rsa2048()),
            ("EdDSA", SigningKey::generate_ed25519()),
        ];
        for (alg, key) in cases {
            let jws = sign_jws(&key, KeyRef::Jwk, Some("nonce-1"), URL, Some(&payload));
            let parsed = parse(&jws).unwrap_or_else(|e| panic!("{alg}: {e}"));
            assert_eq!(parsed.header.alg, alg);
            assert_eq!(parsed.header.key, KeyOrKeyId::Jwk(key.jwk()));
            assert_eq!(parsed.header.nonce.as_deref(), Some("nonce-1"));
            assert_eq!(parsed.header.url, URL);
            assert_eq!(
                serde_json::from_slice::<Value>(&parsed.payload).ok(),
                Some(payload.clone())
            );
            assert_eq!(parsed.verify(&key.jwk()), Ok(()), "{alg}");
        }
    }

    #[test]
    fn post_as_get_with_kid() {
        let key = SigningKey::generate_p256();
        let jws = sign_jws(&key, KeyRef::Kid(KID), None, URL, None);
        assert_eq!(jws["payload"], "");
        let parsed = parse(&jws).expect("valid JWS");
        assert_eq!(parsed.header.key, KeyOrKeyId::KeyId(KID.into()));
        assert_eq!(parsed.header.nonce, None);
        assert!(parsed.payload.is_empty());
        assert_eq!(parsed.verify(&key.jwk()), Ok(()));
    }

    #[test]
    fn verification_failures() {
        let key = SigningKey::generate_p256();
        let other = SigningKey::generate_p256();
        let p384 = SigningKey::generate_p384();
        let jws = sign_jws(&key, KeyRef::Kid(KID), Some("n"), URL, Some(&json!({})));
        let mut tampered = jws.clone();
        tampered["payload"] = json!(base64url(br#"{"a":1}"#));
        let cases: [(&str, Value, &SigningKey, JoseError); 3] = [
            ("tampered payload", tampered, &key, JoseError::BadSignature),
            ("other key", jws.clone(), &other, JoseError::BadSignature),
            (
                "wrong alg for key",
                jws,
                &p384,
                JoseError::BadAlgorithm(
                    "the JWS algorithm ES256 does not suit this P-384 key, which signs with ES384"
                        .into(),
                ),
            ),
        ];
        for (name, jws, verifier, expected) in cases {
            let parsed = parse(&jws).expect(name);
            assert_eq!(parsed.verify(&verifier.jwk()), Err(expected), "{name}");
        }
    }

    #[test]
    fn parse_refusals() {
        let key = SigningKey::generate_p256();
        let jwk = serde_json::to_value(key.jwk()).expect("json");
        let raw = |header: Value| sign_jws_raw(&key, header, b"{}");
        let valid = raw(json!({"alg": "ES256", "kid": KID, "nonce": "n", "url": URL}));
        let with = |name: &str, value: Value| {
            let mut jws = valid.clone();
            jws[name] = value;
            jws
        };
        let without = |name: &str| {
            let mut jws = valid.clone();
            jws.as_object_mut().map(|o| o.remove(name));
            jws
        };
        let mut rsa_1024 = vec![0xff_u8; 128];
        rsa_1024[127] = 0xfb;
        let rsa_1024 = json!({"kty": "RSA", "n": base64url(&rsa_1024), "e": "AQAB"});
        let mut private_jwk = jwk.clone();
        private_jwk["d"] = json!(base64url(&[7; 32]));

        use JoseError::{BadAlgorithm as Alg, BadKey as Key, Malformed as Mal};
        type Kind = fn(String) -> JoseError;
        let cases: Vec<(&str, Vec<u8>, Kind, &str)> = vec![
            ("non-JSON", b"not json".to_vec(), Mal, "not a JSON object"),
            ("JSON array", b"[]".to_vec(), Mal, "not a JSON object"),
            (
                "general serialisation",
                with("signatures", json!([])).to_string().into_bytes(),
                Mal,
                "\"signatures\"",
            ),
            (
                "unprotected header",
                with("header", json!({"kid": KID})).to_string().into_bytes(),
                Mal,
                "unprotected",
            ),
            (
                "unknown member",
                with("extra", json!(1)).to_string().into_bytes(),
                Mal,
                "unknown JWS member \"extra\"",
            ),
            (
                "missing protected",
                without("protected").to_string().into_bytes(),
                Mal,
                "no \"protected\"",
            ),
            (
                "missing payload",
                without("payload").to_string().into_bytes(),
                Mal,
                "no \"payload\"",
            ),
            (
                "missing signature",
                without("signature").to_string().into_bytes(),
                Mal,
                "no \"signature\"",
            ),
            (
                "payload not a string",
                with("payload", json!({})).to_string().into_bytes(),
                Mal,
                "\"payload\" is not a string",
            ),
            (
                "padded signature",
                with(
                    "signature",
                    json!(format!(
                        "{}=",
                        valid["signature"].as_str().unwrap_or_default()
                    )),
                )
                .to_string()
                .into_bytes(),
                Mal,
                "\"signature\" is not base64url",
            ),
            (
                "standard alphabet",
                with("payload", json!("e30+")).to_string().into_bytes(),
                Mal,
                "\"payload\" is not base64url",
            ),
            (
                "header not an object",
                with("protected", json!(base64url(b"[1]")))
                    .to_string()
                    .into_bytes(),
                Mal,
                "protected header is not a JSON object",
            ),
            (
                "header not JSON",
                with("protected", json!(base64url(b"alg")))
                    .to_string()
                    .into_bytes(),
                Mal,
                "protected header is not a JSON object",
            ),
        ];
        let header_cases: Vec<(&str, Value, Kind, &str)> = vec![
            (
                "alg none",
                json!({"alg": "none", "kid": KID, "url": URL}),
                Alg,
                "\"none\" is not allowed",
            ),
            (
                "alg HS256",
                json!({"alg": "HS256", "kid": KID, "url": URL}),
                Alg,
                "MAC algorithm \"HS256\"",
            ),
            (
                "alg unknown",
                json!({"alg": "PS256", "kid": KID, "url": URL}),
                Alg,
                "\"PS256\" is not supported; supported: ES256, ES384, RS256, EdDSA",
            ),
            (
                "alg missing",
                json!({"kid": KID, "url": URL}),
                Mal,
                "no \"alg\"",
            ),
            (
                "alg not a string",
                json!({"alg": 1, "kid": KID, "url": URL}),
                Mal,
                "\"alg\" is not a string",
            ),
            (
                "jwk and kid",
                json!({"alg": "ES256", "jwk": jwk, "kid": KID, "url": URL}),
                Mal,
                "both \"jwk\" and \"kid\"",
            ),
            (
                "neither jwk nor kid",
                json!({"alg": "ES256", "url": URL}),
                Mal,
                "neither \"jwk\" nor \"kid\"",
            ),
            (
                "kid not a string",
                json!({"alg": "ES256", "kid": 1, "url": URL}),
                Mal,
                "\"kid\" is not a string",
            ),
            (
                "crit",
                json!({"alg": "ES256", "kid": KID, "url": URL, "crit": ["exp"], "exp": 1}),
                Mal,
                "unsupported critical header",
            ),
            (
                "empty crit",
                json!({"alg": "ES256", "kid": KID, "url": URL, "crit": []}),
                Mal,
                "unsupported critical header",
            ),
            (
                "b64 false",
                json!({"alg": "ES256", "kid": KID, "url": URL, "b64": false}),
                Mal,
                "\"b64\": false",
            ),
            (
                "missing url",
                json!({"alg": "ES256", "kid": KID}),
                Mal,
                "no \"url\"",
            ),
            (
                "url not a string",
                json!({"alg": "ES256", "kid": KID, "url": 1}),
                Mal,
                "\"url\" is not a string",
            ),
            (
                "nonce not a string",
                json!({"alg": "ES256", "kid": KID, "url": URL, "nonce": 1}),
                Mal,
                "\"nonce\" is not a string",
            ),
            (
                "rsa 1024 jwk",
                json!({"alg": "RS256", "jwk": rsa_1024, "url": URL}),
                Key,
                "1024 bits",
            ),
            (
                "jwk with d",
                json!({"alg": "ES256", "jwk": private_jwk, "url": URL}),
                Key,
                "private member \"d\"",
            ),
            (
                "jwk not an object",
                json!({"alg": "ES256", "jwk": "key", "url": URL}),
                Key,
                "not a JSON object",
            ),
        ];
        let header_cases = header_cases
            .into_iter()
            .map(|(name, header, kind, fragment)| {
                (name, raw(header).to_string().into_bytes(), kind, fragment)
            });
        for (name, body, kind, fragment) in cases.into_iter().chain(header_cases) {
            let error = ParsedJws::parse(&body).expect_err(name);
            let expected_kind = kind(String::new());
            assert_eq!(
                std::mem::discriminant(&error),
                std::mem::discriminant(&expected_kind),
                "{name}: {error:?}"
            );
            assert!(error.to_string().contains(fragment), "{name}: {error}");
        }
        assert!(parse(&valid).is_ok(), "the base case parses");
    }

    #[test]
    fn tolerated_header_members() {
        let key = SigningKey::generate_ed25519();
        let header = json!({"alg": "EdDSA", "kid": KID, "url": URL, "b64": true, "typ": "JOSE"});
        let parsed = parse(&sign_jws_raw(&key, header, b"")).expect("valid JWS");
        assert_eq!(parsed.verify(&key.jwk()), Ok(()));
    }
}
