//! JWTs (RFC 7519) in the compact JWS serialisation (RFC 7515 §7.1): the one-time tokens of JWK
//! provisioners and the ID tokens of OIDC providers. Verified with the same [`Jwk::verify`] as
//! ACME requests, so one implementation checks every signature Mayfly accepts.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{JoseError, Jwk, SigningKey, base64url, base64url_decode};

/// The members of a JWT's protected header that Mayfly reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct JwtHeader {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub typ: Option<String>,
    /// RFC 7515 §4.1.11: a verifier that does not understand every listed extension must
    /// refuse the token. Mayfly understands none.
    #[serde(default)]
    pub crit: Option<Value>,
}

/// A token split and decoded, its signature not yet checked.
#[derive(Clone, Debug)]
pub struct UnverifiedJwt {
    pub header: JwtHeader,
    /// The claims set: a JSON object.
    pub claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

impl UnverifiedJwt {
    /// Splits `header.payload.signature`, decodes each part and refuses `crit` and `none`.
    pub fn parse(token: &str) -> Result<UnverifiedJwt, JoseError> {
        let token = token.trim();
        let mut parts = token.split('.');
        let (Some(header_part), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JoseError::Malformed(
                "a token must have three base64url parts separated by dots".into(),
            ));
        };
        let decode = |what: &str, part: &str| {
            base64url_decode(part)
                .map_err(|_| JoseError::Malformed(format!("the token's {what} is not base64url")))
        };
        let header_bytes = decode("header", header_part)?;
        let header: JwtHeader = serde_json::from_slice(&header_bytes).map_err(|e| {
            JoseError::Malformed(format!("the token's header is not a JWS header: {e}"))
        })?;
        if header.crit.is_some() {
            return Err(JoseError::Malformed(
                "the token lists critical header extensions (crit), which Mayfly does not support"
                    .into(),
            ));
        }
        if header.alg == "none" || header.alg.starts_with("HS") {
            return Err(JoseError::BadAlgorithm(format!(
                "the token algorithm {} is not accepted; sign with ES256, ES384, RS256 or EdDSA",
                header.alg
            )));
        }
        let claims = match serde_json::from_slice::<Value>(&decode("payload", payload)?) {
            Ok(Value::Object(claims)) => claims,
            _ => {
                return Err(JoseError::Malformed(
                    "the token's payload is not a JSON object".into(),
                ));
            }
        };
        Ok(UnverifiedJwt {
            header,
            claims,
            signing_input: format!("{header_part}.{payload}"),
            signature: decode("signature", signature)?,
        })
    }

    /// Checks the signature with `key`; the header's `alg` must suit the key.
    pub fn verify(&self, key: &Jwk) -> Result<(), JoseError> {
        key.verify(
            &self.header.alg,
            self.signing_input.as_bytes(),
            &self.signature,
        )
    }

    /// A string claim, if present and a string.
    pub fn str_claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A NumericDate claim (RFC 7519 §2), in whole seconds; fractions are truncated.
    pub fn time_claim(&self, name: &str) -> Result<Option<i64>, JoseError> {
        match self.claims.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| JoseError::Malformed(format!("the {name} claim is not a time"))),
            Some(_) => Err(JoseError::Malformed(format!(
                "the {name} claim is not a NumericDate"
            ))),
        }
    }

    /// `aud` as a list: RFC 7519 §4.1.3 allows one string or an array of strings.
    pub fn audiences(&self) -> Vec<&str> {
        match self.claims.get("aud") {
            Some(Value::String(aud)) => vec![aud.as_str()],
            Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

/// Signs `claims` as a compact JWT with `key`, naming it by `kid` when given.
pub fn sign_jwt(key: &SigningKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = serde_json::json!({"alg": key.alg(), "typ": "JWT"});
    if let Some(kid) = kid {
        header["kid"] = Value::String(kid.to_owned());
    }
    let header = base64url(header.to_string().as_bytes());
    let payload = base64url(claims.to_string().as_bytes());
    let signing_input = format!("{header}.{payload}");
    let signature = base64url(&key.sign(signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token(key: &SigningKey) -> String {
        sign_jwt(
            key,
            Some("k1"),
            &json!({"iss": "ops", "sub": "web", "exp": 1_700_000_300, "aud": ["a", "b"]}),
        )
    }

    #[test]
    fn every_key_type_round_trips() {
        for key in [
            SigningKey::generate_p256(),
            SigningKey::generate_p384(),
            SigningKey::generate_ed25519(),
            SigningKey::generate_rsa2048(),
        ] {
            let jwt = UnverifiedJwt::parse(&token(&key)).expect("parses");
            assert_eq!(jwt.header.kid.as_deref(), Some("k1"));
            assert_eq!(jwt.str_claim("iss"), Some("ops"));
            assert_eq!(jwt.time_claim("exp"), Ok(Some(1_700_000_300)));
            assert_eq!(jwt.audiences(), vec!["a", "b"]);
            jwt.verify(&key.jwk()).expect("verifies");
        }
    }

    #[test]
    fn another_key_or_a_changed_payload_does_not_verify() {
        let key = SigningKey::generate_p256();
        let other = SigningKey::generate_p256();
        let jwt = UnverifiedJwt::parse(&token(&key)).expect("parses");
        assert_eq!(jwt.verify(&other.jwk()), Err(JoseError::BadSignature));

        let good = token(&key);
        let mut parts: Vec<&str> = good.split('.').collect();
        let forged = base64url(br#"{"iss":"ops","sub":"admin","exp":1700000300}"#);
        parts[1] = &forged;
        let jwt = UnverifiedJwt::parse(&parts.join(".")).expect("parses");
        assert_eq!(jwt.verify(&key.jwk()), Err(JoseError::BadSignature));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let b = |v: &Value| base64url(v.to_string().as_bytes());
        let claims = b(&json!({"sub": "x"}));
        let cases: Vec<(&str, String)> = vec![
            (
                "two parts",
                format!("{}.{claims}", b(&json!({"alg": "ES256"}))),
            ),
            (
                "four parts",
                format!("{}.{claims}.AA.AA", b(&json!({"alg": "ES256"}))),
            ),
            (
                "not base64url",
                format!("{}.{claims}.***", b(&json!({"alg": "ES256"}))),
            ),
            (
                "alg none",
                format!("{}.{claims}.", b(&json!({"alg": "none"}))),
            ),
            (
                "a MAC",
                format!("{}.{claims}.AA", b(&json!({"alg": "HS256"}))),
            ),
            (
                "crit",
                format!(
                    "{}.{claims}.AA",
                    b(&json!({"alg": "ES256", "crit": ["exp"]}))
                ),
            ),
            (
                "payload not an object",
                format!("{}.{}.AA", b(&json!({"alg": "ES256"})), b(&json!([1]))),
            ),
        ];
        for (name, token) in cases {
            assert!(UnverifiedJwt::parse(&token).is_err(), "{name}");
        }
    }
}
