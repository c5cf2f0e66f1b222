//! External Account Binding (RFC 8555 §7.3.4): the MAC-signed JWS a client puts in
//! `newAccount.externalAccountBinding` to prove it holds a key the operator handed out.
//!
//! The binding is a flattened JWS whose protected header has `alg` HS256, HS384 or HS512,
//! `kid` (the EAB key id) and `url` (the newAccount URL), and no `nonce`; its payload is the
//! account's JWK. Parsing checks all of that; [`ParsedEab::verify`] checks the MAC with the
//! key the caller looked up by `kid`.

use aws_lc_rs::hmac;
use serde_json::{Map, Value, json};

use super::{JoseError, Jwk, base64url, base64url_decode};

/// The MAC algorithms of RFC 7518 §3.2 that a binding may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacAlgorithm {
    Hs256,
    Hs384,
    Hs512,
}

impl MacAlgorithm {
    pub fn parse(alg: &str) -> Option<Self> {
        match alg {
            "HS256" => Some(Self::Hs256),
            "HS384" => Some(Self::Hs384),
            "HS512" => Some(Self::Hs512),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Hs384 => "HS384",
            Self::Hs512 => "HS512",
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            Self::Hs256 => hmac::HMAC_SHA256,
            Self::Hs384 => hmac::HMAC_SHA384,
            Self::Hs512 => hmac::HMAC_SHA512,
        }
    }
}

/// An `externalAccountBinding` whose structure, `url` and payload were checked; its MAC is
/// not checked yet.
#[derive(Clone, Debug)]
pub struct ParsedEab {
    pub alg: MacAlgorithm,
    /// The EAB key id, to look the HMAC key up with.
    pub kid: String,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

/// The members of a flattened JWS (RFC 7515 §7.2.2) that a binding may have.
const MEMBERS: [&str; 3] = ["protected", "payload", "signature"];

impl ParsedEab {
    /// Parses `binding` and checks it against the request it came in: its `url` must be
    /// `new_account_url` and its payload must be `account_key` (RFC 8555 §7.3.4).
    pub fn parse(
        binding: &Value,
        new_account_url: &str,
        account_key: &Jwk,
    ) -> Result<Self, JoseError> {
        let Value::Object(members) = binding else {
            return Err(malformed(
                "externalAccountBinding is not a JSON object (a flattened JWS)",
            ));
        };
        if let Some(unknown) = members
            .keys()
            .find(|name| !MEMBERS.contains(&name.as_str()))
        {
            return Err(malformed(&format!(
                "externalAccountBinding has the member {unknown:?}; only protected, payload and signature are allowed"
            )));
        }
        let protected_b64 = member(members, "protected")?;
        let payload_b64 = member(members, "payload")?;
        let signature_b64 = member(members, "signature")?;

        let Ok(Value::Object(header)) =
            serde_json::from_slice::<Value>(&decode(protected_b64, "protected")?)
        else {
            return Err(malformed(
                "the externalAccountBinding protected header is not a JSON object",
            ));
        };
        let alg = header_string(&header, "alg")?;
        let alg = MacAlgorithm::parse(&alg).ok_or_else(|| {
            JoseError::BadAlgorithm(format!(
                "the externalAccountBinding algorithm {alg:?} is not supported; use HS256, HS384 or HS512"
            ))
        })?;
        let kid = header_string(&header, "kid")?;
        let url = header_string(&header, "url")?;
        for forbidden in ["nonce", "jwk", "crit"] {
            if header.contains_key(forbidden) {
                return Err(malformed(&format!(
                    "the externalAccountBinding protected header must not have {forbidden:?}"
                )));
            }
        }
        if url != new_account_url {
            return Err(malformed(&format!(
                "the externalAccountBinding url {url:?} is not the newAccount URL {new_account_url:?}"
            )));
        }
        let payload: Value = serde_json::from_slice(&decode(payload_b64, "payload")?)
            .map_err(|_| malformed("the externalAccountBinding payload is not JSON"))?;
        let bound_key = Jwk::parse(&payload)?;
        if bound_key.thumbprint() != account_key.thumbprint() {
            return Err(malformed(
                "the externalAccountBinding payload is not the key this request is signed with",
            ));
        }
        Ok(ParsedEab {
            alg,
            kid,
            signing_input: [protected_b64.as_bytes(), b".", payload_b64.as_bytes()].concat(),
            signature: decode(signature_b64, "signature")?,
        })
    }

    /// Checks the MAC with `hmac_key` (in constant time).
    pub fn verify(&self, hmac_key: &[u8]) -> Result<(), JoseError> {
        let key = hmac::Key::new(self.alg.hmac(), hmac_key);
        hmac::verify(&key, &self.signing_input, &self.signature)
            .map_err(|_| JoseError::BadSignature)
    }
}

/// The client side: an `externalAccountBinding` for `account_key`, MAC'd with `hmac_key`
/// under `kid` (tests and tools use it to play an ACME client).
pub fn sign_eab(
    alg: MacAlgorithm,
    kid: &str,
    hmac_key: &[u8],
    new_account_url: &str,
    account_key: &Jwk,
) -> Value {
    let header = json!({"alg": alg.as_str(), "kid": kid, "url": new_account_url});
    let payload = serde_json::to_vec(account_key).unwrap_or_default();
    sign_eab_raw(alg, hmac_key, &header, &payload)
}

/// A binding with any protected header and payload, even ones Mayfly refuses.
pub fn sign_eab_raw(alg: MacAlgorithm, hmac_key: &[u8], header: &Value, payload: &[u8]) -> Value {
    let protected = base64url(header.to_string().as_bytes());
    let payload = base64url(payload);
    let key = hmac::Key::new(alg.hmac(), hmac_key);
    let tag = hmac::sign(&key, format!("{protected}.{payload}").as_bytes());
    json!({"protected": protected, "payload": payload, "signature": base64url(tag.as_ref())})
}

fn member<'a>(members: &'a Map<String, Value>, name: &str) -> Result<&'a str, JoseError> {
    match members.get(name) {
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(malformed(&format!(
            "the externalAccountBinding member {name:?} is not a string"
        ))),
        None => Err(malformed(&format!(
            "the externalAccountBinding has no {name:?} member"
        ))),
    }
}

fn header_string(header: &Map<String, Value>, name: &str) -> Result<String, JoseError> {
    match header.get(name) {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(malformed(&format!(
            "the externalAccountBinding header member {name:?} is not a string"
        ))),
        None => Err(malformed(&format!(
            "the externalAccountBinding protected header has no {name:?}"
        ))),
    }
}

fn decode(text: &str, name: &str) -> Result<Vec<u8>, JoseError> {
    base64url_decode(text).map_err(|_| {
        malformed(&format!(
            "the externalAccountBinding member {name:?} is not base64url without padding"
        ))
    })
}

fn malformed(message: &str) -> JoseError {
    JoseError::Malformed(message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::SigningKey;

    const URL: &str = "https://ca.example/acme/new-account";
    const KID: &str = "kid-1";
    const HMAC_KEY: [u8; 64] = [7; 64];

    fn parse(binding: &Value, key: &SigningKey) -> Result<ParsedEab, JoseError> {
        ParsedEab::parse(binding, URL, &key.jwk())
    }

    #[test]
    fn every_algorithm_round_trips() {
        let key = SigningKey::generate_p256();
        for alg in [
            MacAlgorithm::Hs256,
            MacAlgorithm::Hs384,
            MacAlgorithm::Hs512,
        ] {
            let binding = sign_eab(alg, KID, &HMAC_KEY, URL, &key.jwk());
            let parsed = parse(&binding, &key).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
            assert_eq!(parsed.alg, alg);
            assert_eq!(parsed.kid, KID);
            assert_eq!(parsed.verify(&HMAC_KEY), Ok(()), "{alg:?}");
            assert_eq!(
                parsed.verify(&[8; 64]),
                Err(JoseError::BadSignature),
                "{alg:?} with another key"
            );
        }
    }

    #[test]
    fn tampered_mac_does_not_verify() {
        let key = SigningKey::generate_p256();
        let mut binding = sign_eab(MacAlgorithm::Hs256, KID, &HMAC_KEY, URL, &key.jwk());
        binding["signature"] = json!(base64url(&[0; 32]));
        let parsed = parse(&binding, &key).expect("well formed");
        assert_eq!(parsed.verify(&HMAC_KEY), Err(JoseError::BadSignature));
    }

    #[test]
    fn refusals() {
        let key = SigningKey::generate_p256();
        let other = SigningKey::generate_p256();
        let jwk_bytes = serde_json::to_vec(&key.jwk()).expect("json");
        let raw = |header: Value, payload: &[u8]| {
            sign_eab_raw(MacAlgorithm::Hs256, &HMAC_KEY, &header, payload)
        };
        let header = |extra: Value| {
            let mut h = json!({"alg": "HS256", "kid": KID, "url": URL});
            if let (Some(h), Value::Object(extra)) = (h.as_object_mut(), extra) {
                h.extend(extra);
            }
            h
        };
        let mut with_header_member = raw(header(json!({})), &jwk_bytes);
        with_header_member["header"] = json!({"kid": KID});
        let cases: Vec<(&str, Value, &str)> = vec![
            ("not an object", json!("jws"), "not a JSON object"),
            (
                "wrong url",
                raw(
                    header(json!({"url": "https://ca.example/acme/new-order"})),
                    &jwk_bytes,
                ),
                "is not the newAccount URL",
            ),
            (
                "payload is another key",
                sign_eab(MacAlgorithm::Hs256, KID, &HMAC_KEY, URL, &other.jwk()),
                "not the key this request is signed with",
            ),
            (
                "payload is not a key",
                raw(header(json!({})), b"{}"),
                "no \"kty\"",
            ),
            (
                "nonce present",
                raw(header(json!({"nonce": "n"})), &jwk_bytes),
                "must not have \"nonce\"",
            ),
            (
                "no kid",
                raw(json!({"alg": "HS256", "url": URL}), &jwk_bytes),
                "no \"kid\"",
            ),
            (
                "asymmetric alg",
                raw(header(json!({"alg": "ES256"})), &jwk_bytes),
                "not supported",
            ),
            (
                "unprotected header",
                with_header_member,
                "member \"header\"",
            ),
        ];
        for (name, binding, fragment) in cases {
            match parse(&binding, &key) {
                Ok(_) => panic!("{name}: accepted"),
                Err(e) => assert!(e.to_string().contains(fragment), "{name}: {e}"),
            }
        }
    }
}
