//! JWK provisioners: one-time tokens (JWTs) signed by a key the operator holds, as step-ca's
//! JWK provisioner. The private key may be kept in the configuration as a PBES2 JWE, so that
//! `mayfly token` can mint tokens with a password.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{TokenError, TokenErrorKind, TokenIdentity};
use crate::config::HumanDuration;
use crate::jose::{Jwk, UnverifiedJwt};
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
        let _ = (name, config);
        Err("key: JWK provisioners are not implemented yet".to_owned())
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

    /// Verifies a token: signature, `iss` = the name, `aud` one of `audiences`, times, lifetime.
    pub fn verify(
        &self,
        jwt: &UnverifiedJwt,
        token: &str,
        audiences: &[String],
        now: OffsetDateTime,
    ) -> Result<TokenIdentity, TokenError> {
        let _ = (
            jwt,
            token,
            audiences,
            now,
            self.max_token_lifetime,
            self.clock_skew,
        );
        Err(TokenError::new(
            TokenErrorKind::UnknownProvisioner,
            "JWK provisioners are not implemented yet",
        ))
    }
}
