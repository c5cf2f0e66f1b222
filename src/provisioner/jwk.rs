//! JWK provisioners: one-time tokens (JWTs) signed by a key the operator holds, as step-ca's
//! JWK provisioner. The private key may be kept in the configuration as a PBES2 JWE, so that
//! `mayfly token` can mint tokens with a password.
//!
//! - [`mint`]: the claims of a token and [`mint::mint_token`] (the CLI and tests use it).
//! - [`tool`]: `mayfly provisioner jwk-create` and `mayfly token`.

pub mod mint;
pub mod tool;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::{TokenError, TokenErrorKind, TokenIdentity};
use crate::config::HumanDuration;
use crate::jose::jwe::Pbes2Jwe;
use crate::jose::{JoseError, Jwk, UnverifiedJwt};
use crate::policy::PartialClaims;
use crate::policy::fixups::FixupList;
use crate::policy::validators::ValidatorList;

/// `[provisioners.<name>]` with `type = "jwk"`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwkProvisionerConfig {
    /// The public JWK, as JSON text (EC P-256/P-384, RSA or Ed25519). Its `kid` (or, without
    /// one, its RFC 7638 thumbprint) is what tokens name in their header.
    pub key: Option<String>,
    /// A file holding the public JWK, instead of `key`.
    pub key_file: Option<PathBuf>,
    /// The private key as a compact JWE (PBES2-HS256+A128KW, as step-ca stores it), for
    /// `mayfly token --password-file`.
    pub encrypted_key: Option<String>,
    /// A file holding the JWE, instead of `encrypted_key`.
    pub encrypted_key_file: Option<PathBuf>,
    /// Tokens that live longer than this (`exp - nbf`) are refused.
    pub max_token_lifetime: HumanDuration,
    /// Tolerated clock difference for `nbf`, `iat` and `exp`.
    pub clock_skew: HumanDuration,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claims: Option<PartialClaims>,
    pub profiles: Vec<String>,
    pub validators: ValidatorList,
    pub fixups: FixupList,
}

impl Default for JwkProvisionerConfig {
    fn default() -> Self {
        JwkProvisionerConfig {
            key: None,
            key_file: None,
            encrypted_key: None,
            encrypted_key_file: None,
            max_token_lifetime: super::default_max_token_lifetime(),
            clock_skew: HumanDuration::seconds(30),
            claims: None,
            profiles: Vec::new(),
            validators: ValidatorList::default(),
            fixups: FixupList::default(),
        }
    }
}

impl JwkProvisionerConfig {
    /// The public key (`key` or `key_file`, exactly one) and the `kid` tokens name: the JWK's
    /// own `kid`, else its RFC 7638 thumbprint. Errors start with the key they are about.
    pub fn public_key(&self) -> Result<(Jwk, String), String> {
        let (source, text) = match (&self.key, &self.key_file) {
            (Some(_), Some(_)) => return Err("key: set key or key_file, not both".into()),
            (None, None) => {
                return Err(
                    "key: set key (the public JWK, as JSON text) or key_file (a file holding it)"
                        .into(),
                );
            }
            (Some(text), None) => ("key", text.clone()),
            (None, Some(path)) => ("key_file", read_file("key_file", path)?),
        };
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{source}: the public JWK is not JSON: {e}"))?;
        if value.get("d").is_some() {
            return Err(format!(
                "{source}: this is a private key; configure the public key (and the private one \
                 as encrypted_key, a JWE)"
            ));
        }
        let jwk = Jwk::parse(&value).map_err(|e| format!("{source}: {e}"))?;
        if let Some(alg) = value.get("alg") {
            let expected = jwk.algorithm().map_err(|e| format!("{source}: {e}"))?;
            if alg.as_str() != Some(expected) {
                return Err(format!(
                    "{source}: the JWK's alg is {alg}, but this key signs with {expected}"
                ));
            }
        }
        let kid = match value.get("kid") {
            None => jwk.thumbprint(),
            Some(Value::String(kid)) if !kid.is_empty() => kid.clone(),
            Some(_) => return Err(format!("{source}: the JWK's kid is not a non-empty string")),
        };
        Ok((jwk, kid))
    }

    /// The private key as a JWE (`encrypted_key` or `encrypted_key_file`, at most one),
    /// checked as far as it can be without the password.
    pub fn encrypted_key(&self) -> Result<Option<Pbes2Jwe>, String> {
        let (source, text) = match (&self.encrypted_key, &self.encrypted_key_file) {
            (Some(_), Some(_)) => {
                return Err(
                    "encrypted_key: set encrypted_key or encrypted_key_file, not both".into(),
                );
            }
            (None, None) => return Ok(None),
            (Some(text), None) => ("encrypted_key", text.clone()),
            (None, Some(path)) => ("encrypted_key_file", read_file("encrypted_key_file", path)?),
        };
        Pbes2Jwe::parse(&text)
            .map(Some)
            .map_err(|e| format!("{source}: {e}"))
    }
}

fn read_file(source: &str, path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("{source}: cannot read {}: {e}", path.display()))
}

/// A JWK provisioner, ready to verify tokens.
pub struct JwkProvisioner {
    name: String,
    key: Jwk,
    kid: String,
    max_token_lifetime: time::Duration,
    clock_skew: time::Duration,
}

impl JwkProvisioner {
    /// Builds it from its configuration; the error starts with the key it is about (`key: …`).
    pub fn new(name: &str, config: &JwkProvisionerConfig) -> Result<Self, String> {
        let (key, kid) = config.public_key()?;
        // The key cannot be decrypted without the password; check that it is a PBES2 JWE.
        config.encrypted_key()?;
        if config.max_token_lifetime.0 <= time::Duration::ZERO {
            return Err("max_token_lifetime: must be longer than 0s".into());
        }
        Ok(JwkProvisioner {
            name: name.to_owned(),
            key,
            kid,
            max_token_lifetime: config.max_token_lifetime.0,
            clock_skew: config.clock_skew.0,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `kid` tokens must name.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn key(&self) -> &Jwk {
        &self.key
    }

    /// Verifies a token, in this order: the header's `kid`, the signature, `iss` = the name,
    /// `aud` one of `audiences`, `exp`, `nbf`, `iat`, the lifetime, then the claims Mayfly
    /// reads (`sub`, `sans`, `jti`, `groups`, `cnf.jkt`). `_token` is not needed: a JWK
    /// token's single-use id is its required `jti`.
    pub fn verify(
        &self,
        jwt: &UnverifiedJwt,
        _token: &str,
        audiences: &[String],
        now: OffsetDateTime,
    ) -> Result<TokenIdentity, TokenError> {
        use TokenErrorKind::*;
        let name = &self.name;
        let error = |kind, detail: String| TokenError::new(kind, detail);

        match jwt.header.kid.as_deref() {
            Some(kid) if kid == self.kid => {}
            Some(kid) => {
                return Err(error(
                    UnknownKey,
                    format!(
                        "the token names key {kid:?}; provisioner {name:?} has key {:?}",
                        self.kid
                    ),
                ));
            }
            None => {
                return Err(error(
                    UnknownKey,
                    format!(
                        "the token's header names no key (kid); provisioner {name:?} has key {:?}",
                        self.kid
                    ),
                ));
            }
        }
        jwt.verify(&self.key).map_err(|e| match e {
            JoseError::BadSignature => error(
                BadSignature,
                format!("the token's signature does not verify with provisioner {name:?}'s key"),
            ),
            other => error(BadSignature, other.to_string()),
        })?;

        let iss = jwt.str_claim("iss");
        if iss != Some(name.as_str()) {
            return Err(error(
                BadIssuer,
                format!("the token's iss is {iss:?}; expected {name:?}"),
            ));
        }
        let auds = jwt.audiences();
        if !auds.iter().any(|aud| audiences.iter().any(|a| a == aud)) {
            return Err(error(
                BadAudience,
                format!("the token's aud {auds:?} is none of {audiences:?}"),
            ));
        }

        let exp = self.check_times(jwt, now)?;

        let subject = match jwt.claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
            Some(Value::String(_)) | None => {
                return Err(error(Malformed, "the token has no sub".into()));
            }
            Some(_) => return Err(error(Malformed, "the token's sub is not a string".into())),
        };
        // As step-ca: no sans (or an empty list) means the subject is the one name.
        let sans = match string_list(jwt, "sans")? {
            Some(sans) if !sans.is_empty() => sans,
            _ => vec![subject.clone()],
        };
        let token_id = match jwt.claims.get("jti") {
            Some(Value::String(jti)) if !jti.is_empty() => jti.clone(),
            _ => {
                return Err(error(
                    Malformed,
                    "one-time tokens need a jti (a non-empty string)".into(),
                ));
            }
        };
        let groups = string_list(jwt, "groups")?.unwrap_or_default();
        let account_thumbprint = confirmation(jwt)?;
        let expires_at = OffsetDateTime::from_unix_timestamp(exp)
            .map_err(|_| error(Malformed, format!("the token's exp {exp} is out of range")))?;
        Ok(TokenIdentity {
            provisioner: name.clone(),
            subject,
            sans,
            email: None,
            groups,
            admin: false,
            token_id,
            expires_at,
            account_thumbprint,
        })
    }

    /// `exp` (required), `nbf` and `iat` (optional, one of them required) against `now` with
    /// the clock skew, and the lifetime `exp - (nbf or iat)` against the maximum. Returns `exp`.
    fn check_times(&self, jwt: &UnverifiedJwt, now: OffsetDateTime) -> Result<i64, TokenError> {
        use TokenErrorKind::*;
        let skew = self.clock_skew.whole_seconds();
        let now = now.unix_timestamp();
        let show = |t: i64| match OffsetDateTime::from_unix_timestamp(t) {
            Ok(t) => t
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| t.to_string()),
            Err(_) => t.to_string(),
        };
        let error = |kind, detail: String| Err(TokenError::new(kind, detail));

        let Some(exp) = time_claim(jwt, "exp")? else {
            return error(Malformed, "the token has no exp".into());
        };
        if exp.saturating_add(skew) <= now {
            return error(
                Expired,
                format!(
                    "the token expired at {} (now {}, clock skew {skew}s)",
                    show(exp),
                    show(now)
                ),
            );
        }
        let nbf = time_claim(jwt, "nbf")?;
        if let Some(nbf) = nbf
            && nbf.saturating_sub(skew) > now
        {
            return error(
                NotYetValid,
                format!(
                    "the token is not valid before {} (now {}, clock skew {skew}s)",
                    show(nbf),
                    show(now)
                ),
            );
        }
        let iat = time_claim(jwt, "iat")?;
        if let Some(iat) = iat
            && iat.saturating_sub(skew) > now
        {
            return error(
                NotYetValid,
                format!(
                    "the token was issued in the future: iat {} (now {}, clock skew {skew}s)",
                    show(iat),
                    show(now)
                ),
            );
        }
        let Some(start) = nbf.or(iat) else {
            return error(
                Malformed,
                "a one-time token needs nbf or iat, which bound its lifetime".into(),
            );
        };
        if exp <= start {
            return error(
                Malformed,
                "the token's exp is not after its nbf (or iat)".into(),
            );
        }
        let lifetime = time::Duration::seconds(exp.saturating_sub(start));
        if lifetime > self.max_token_lifetime {
            return error(
                LifetimeTooLong,
                format!(
                    "the token lives {} (exp - {}); provisioner {:?} allows at most {}",
                    HumanDuration(lifetime),
                    if nbf.is_some() { "nbf" } else { "iat" },
                    self.name,
                    HumanDuration(self.max_token_lifetime)
                ),
            );
        }
        Ok(exp)
    }
}

fn time_claim(jwt: &UnverifiedJwt, name: &str) -> Result<Option<i64>, TokenError> {
    jwt.time_claim(name)
        .map_err(|e| TokenError::new(TokenErrorKind::Malformed, e.to_string()))
}

/// An optional claim that must be an array of non-empty strings.
fn string_list(jwt: &UnverifiedJwt, name: &str) -> Result<Option<Vec<String>>, TokenError> {
    let Some(value) = jwt.claims.get(name) else {
        return Ok(None);
    };
    let malformed = || {
        TokenError::new(
            TokenErrorKind::Malformed,
            format!("the token's {name} is not an array of non-empty strings"),
        )
    };
    let Value::Array(items) = value else {
        return Err(malformed());
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            _ => Err(malformed()),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// `cnf.jkt` (RFC 7800 §3.1, RFC 9449 §6.1): the ACME account key the token is bound to. A
/// `cnf` without `jkt` is refused: the bearer would escape a binding Mayfly cannot check.
fn confirmation(jwt: &UnverifiedJwt) -> Result<Option<String>, TokenError> {
    let malformed = |detail: &str| TokenError::new(TokenErrorKind::Malformed, detail);
    match jwt.claims.get("cnf") {
        None => Ok(None),
        Some(Value::Object(cnf)) => match cnf.get("jkt") {
            Some(Value::String(jkt)) if !jkt.is_empty() => Ok(Some(jkt.clone())),
            Some(_) => Err(malformed("the token's cnf.jkt is not a non-empty string")),
            None => Err(malformed(
                "the token's cnf has no jkt; Mayfly binds tokens to an account key by jkt only",
            )),
        },
        Some(_) => Err(malformed("the token's cnf is not an object")),
    }
}

#[cfg(test)]
mod tests;
