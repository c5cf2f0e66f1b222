//! Minting one-time tokens for a JWK provisioner: what `mayfly token` prints, and what tests
//! use to play an operator.
//!
//! ```
//! use mayfly::jose::SigningKey;
//! use mayfly::provisioner::jwk::mint::{TokenRequest, mint_token};
//!
//! let key = SigningKey::generate_p256();
//! let kid = key.jwk().thumbprint();
//! let request = TokenRequest::new("ops", "https://ca.example/v1/sign", &["web.example.com"]);
//! let token = mint_token(&key, &kid, &request, time::OffsetDateTime::now_utc());
//! assert_eq!(token.split('.').count(), 3);
//! ```

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::jose::{SigningKey, base64url, sign_jwt};

/// The claims of one token. [`TokenRequest::new`] fills in the usual ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// `iss`: the provisioner's name.
    pub provisioner: String,
    /// `sub`.
    pub subject: String,
    /// `sans`: the names the bearer may have certified.
    pub sans: Vec<String>,
    /// `aud`: the URL the token is meant for (`<base URL>/v1/sign`, or an ACME directory).
    pub audience: String,
    /// `exp - iat` (and `exp - nbf`).
    pub lifetime: time::Duration,
    /// `groups`, left out when empty.
    pub groups: Vec<String>,
    /// `cnf.jkt` (RFC 7800): binds the token to this ACME account key thumbprint.
    pub account_thumbprint: Option<String>,
    /// `jti`; `None`: a fresh random one ([`random_jti`]).
    pub jti: Option<String>,
}

/// What `mayfly token` uses when `--lifetime` is not given; also the default most lifetime
/// a JWK provisioner accepts.
pub const DEFAULT_LIFETIME: time::Duration = time::Duration::minutes(5);

impl TokenRequest {
    /// A token for `sans` whose subject is the first of them, living [`DEFAULT_LIFETIME`],
    /// with a random `jti`, no groups and no account binding.
    pub fn new(provisioner: &str, audience: &str, sans: &[&str]) -> Self {
        TokenRequest {
            provisioner: provisioner.to_owned(),
            subject: sans.first().copied().unwrap_or_default().to_owned(),
            sans: sans.iter().map(|s| (*s).to_owned()).collect(),
            audience: audience.to_owned(),
            lifetime: DEFAULT_LIFETIME,
            groups: Vec::new(),
            account_thumbprint: None,
            jti: None,
        }
    }

    /// The claims set: `iss`, `sub`, `sans`, `aud`, `iat` = `nbf` = `now`,
    /// `exp` = `now + lifetime`, `jti`, and `groups` and `cnf` when set.
    pub fn claims(&self, now: OffsetDateTime) -> Value {
        let now = now.unix_timestamp();
        let mut claims = json!({
            "iss": self.provisioner,
            "sub": self.subject,
            "sans": self.sans,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now.saturating_add(self.lifetime.whole_seconds()),
            "jti": self.jti.clone().unwrap_or_else(random_jti),
        });
        if !self.groups.is_empty() {
            claims["groups"] = json!(self.groups);
        }
        if let Some(jkt) = &self.account_thumbprint {
            claims["cnf"] = json!({ "jkt": jkt });
        }
        claims
    }
}

/// Signs `request`'s claims with `key`, naming it `kid` in the header: a token that
/// [`super::JwkProvisioner::verify`] accepts when `key` is the provisioner's key.
pub fn mint_token(
    key: &SigningKey,
    kid: &str,
    request: &TokenRequest,
    now: OffsetDateTime,
) -> String {
    sign_jwt(key, Some(kid), &request.claims(now))
}

/// 128 random bits, base64url: a `jti` no other token has.
///
/// # Panics
/// If the system random number generator fails.
pub fn random_jti() -> String {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random number generator failed");
    base64url(&bytes)
}
