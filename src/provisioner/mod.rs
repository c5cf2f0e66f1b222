//! Provisioners: who may get which certificate (step-ca's model). Four kinds:
//! - **ACME** ([`AcmeProvisionerConfig`]): RFC 8555 challenges; each has its own directory at
//!   `/acme/<name>/directory`; the default one (`[acme]`, named `acme`) is also at `/directory`.
//! - **JWK** ([`jwk`]): one-time tokens signed by a key the operator holds.
//! - **OIDC** ([`oidc`]): ID tokens from an identity provider.
//! - **Static**: a user and a secret, as in Anchor; for development only.
//!
//! Every provisioner carries its own policy ([`ProvisionerPolicy`]: claims, profiles, validator
//! chain, fixups). Token provisioners verify tokens into a [`TokenIdentity`]; whether a token
//! was used before is a stored fact, so the authority (the only writer) records it.

pub mod jwk;
pub mod oidc;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::acme::Identifier;
use crate::config::{Config, HumanDuration};
use crate::policy::fixups::FixupList;
use crate::policy::validators::{Chain, ValidatorList};
use crate::policy::{Claims, PartialClaims};

/// The name of the ACME provisioner configured by `[acme]`, served at `/directory` too.
pub const DEFAULT_ACME: &str = "acme";

/// One `[provisioners.<name>]` table; `type` picks the kind.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ProvisionerConfig {
    Acme(AcmeProvisionerConfig),
    Jwk(jwk::JwkProvisionerConfig),
    Oidc(oidc::OidcProvisionerConfig),
    Static(StaticProvisionerConfig),
}

/// The policy keys every provisioner has (`claims`, `profiles`, `validators`, `fixups`),
/// repeated in each kind's table: serde's `flatten` cannot be combined with
/// `deny_unknown_fields`.
#[derive(Clone, Copy, Debug)]
pub struct PolicyConfig<'a> {
    pub claims: Option<&'a PartialClaims>,
    pub profiles: &'a [String],
    pub validators: &'a ValidatorList,
    pub fixups: &'a FixupList,
}

macro_rules! policy_of {
    ($c:expr) => {
        PolicyConfig {
            claims: $c.claims.as_ref(),
            profiles: &$c.profiles,
            validators: &$c.validators,
            fixups: &$c.fixups,
        }
    };
}

/// An additional ACME provisioner, with its own directory.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AcmeProvisionerConfig {
    /// JWK or OIDC provisioners whose tokens may authorize this provisioner's orders through a
    /// `tkauth-01` challenge (in the shape of RFC 9447).
    pub token_authorizers: Vec<String>,
    /// Offer only `tkauth-01` (no http-01, dns-01 or tls-alpn-01) when token authorizers are set.
    pub token_only: bool,
    /// `meta.externalAccountRequired` for this directory.
    pub external_account_required: bool,
    /// Whether CAA (RFC 8659) is checked; default: `acme.caa_check`.
    pub caa_check: Option<bool>,
    /// Overrides of `[acme.claims]`, field by field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claims: Option<PartialClaims>,
    /// The profiles this provisioner may issue under; empty: every profile.
    pub profiles: Vec<String>,
    /// The validator chain, in order (as `[[acme.validators]]`).
    pub validators: ValidatorList,
    /// The fixups, in order (as `[[acme.fixups]]`).
    pub fixups: FixupList,
}

/// Anchor-style user and secret; for development only.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaticProvisionerConfig {
    pub user: String,
    pub secret: String,
    /// Overrides of `[acme.claims]`, field by field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claims: Option<PartialClaims>,
    /// The profiles this provisioner may issue under; empty: every profile.
    pub profiles: Vec<String>,
    /// The validator chain, in order (as `[[acme.validators]]`).
    pub validators: ValidatorList,
    /// The fixups, in order (as `[[acme.fixups]]`).
    pub fixups: FixupList,
}

impl std::fmt::Debug for StaticProvisionerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticProvisionerConfig")
            .field("user", &self.user)
            .field("secret", &"REDACTED")
            .field("claims", &self.claims)
            .field("profiles", &self.profiles)
            .finish()
    }
}

/// The policy of one provisioner, merged over the global settings.
#[derive(Clone, Debug)]
pub struct ProvisionerPolicy {
    pub name: String,
    pub claims: Claims,
    /// Empty: every profile.
    pub profiles: Vec<String>,
    pub chain: Chain,
    pub fixups: FixupList,
}

impl ProvisionerPolicy {
    pub fn new(name: &str, global: &Claims, policy: PolicyConfig<'_>) -> Self {
        ProvisionerPolicy {
            name: name.to_owned(),
            claims: Claims::merged(global, policy.claims),
            profiles: policy.profiles.to_vec(),
            chain: Chain::from(policy.validators.clone()),
            fixups: policy.fixups.clone(),
        }
    }

    /// Whether this provisioner may issue under `profile`.
    pub fn allows_profile(&self, profile: &str) -> bool {
        self.profiles.is_empty() || self.profiles.iter().any(|p| p == profile)
    }
}

/// Who a verified token says the bearer is, and what it lets them have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenIdentity {
    /// The provisioner that verified the token.
    pub provisioner: String,
    /// `sub`.
    pub subject: String,
    /// The names the token allows: a JWK token's `sans`; for an OIDC non-admin, the email.
    pub sans: Vec<String>,
    /// A verified email (OIDC).
    pub email: Option<String>,
    /// Groups for the `server_group` validator (OIDC `groups_claim`, a JWK token's `groups`).
    pub groups: Vec<String>,
    /// An OIDC admin may ask for any names.
    pub admin: bool,
    /// What makes the token single-use: its `jti`, or the SHA-256 of the token without one.
    pub token_id: String,
    /// `exp`: the token id is remembered until then.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The ACME account key thumbprint (RFC 7638) the token is bound to: `cnf.jkt` (RFC 7800),
    /// or an OIDC `nonce` that holds it.
    pub account_thumbprint: Option<String>,
}

impl TokenIdentity {
    /// Whether the token lets its bearer have `identifier`: an admin any, everyone else only
    /// the names listed (case-insensitive for DNS names; a wildcard only as written).
    pub fn allows(&self, identifier: &Identifier) -> bool {
        self.admin
            || self
                .sans
                .iter()
                .any(|san| san.eq_ignore_ascii_case(&identifier.value()))
    }
}

/// Why a token was refused. `kind` is stable (the `type` of `/v1` errors, and named in the
/// `tkauth-01` challenge error); `detail` explains.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct TokenError {
    pub kind: TokenErrorKind,
    pub detail: String,
}

impl TokenError {
    pub fn new(kind: TokenErrorKind, detail: impl Into<String>) -> Self {
        TokenError {
            kind,
            detail: detail.into(),
        }
    }
}

/// The check a token failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenErrorKind {
    /// Not a JWT, a claim of the wrong type, a required claim missing.
    Malformed,
    /// No provisioner (of those allowed here) issues tokens with this `iss` / `aud`.
    UnknownProvisioner,
    /// The signature does not verify, or the algorithm does not suit the key.
    BadSignature,
    /// The `kid` is not one of the provisioner's keys (after one refetch for OIDC).
    UnknownKey,
    BadIssuer,
    BadAudience,
    Expired,
    NotYetValid,
    /// `exp - nbf` (or `exp - iat`) is longer than the provisioner allows.
    LifetimeTooLong,
    /// The token was used before, on any replica.
    Replayed,
    EmailNotVerified,
    /// The email's domain is not one of the provisioner's `domains`.
    DomainNotAllowed,
    /// A name asked for is not one the token allows.
    SanNotAllowed,
    /// The token is bound to another ACME account key, or to none where one is required.
    AccountMismatch,
    /// The identity provider could not be reached or answered nonsense.
    ProviderUnavailable,
}

impl TokenErrorKind {
    /// The stable name, e.g. `tokenExpired`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenErrorKind::Malformed => "malformedToken",
            TokenErrorKind::UnknownProvisioner => "unknownProvisioner",
            TokenErrorKind::BadSignature => "badSignature",
            TokenErrorKind::UnknownKey => "unknownKey",
            TokenErrorKind::BadIssuer => "badIssuer",
            TokenErrorKind::BadAudience => "badAudience",
            TokenErrorKind::Expired => "tokenExpired",
            TokenErrorKind::NotYetValid => "tokenNotYetValid",
            TokenErrorKind::LifetimeTooLong => "tokenLifetimeTooLong",
            TokenErrorKind::Replayed => "tokenReplayed",
            TokenErrorKind::EmailNotVerified => "emailNotVerified",
            TokenErrorKind::DomainNotAllowed => "domainNotAllowed",
            TokenErrorKind::SanNotAllowed => "sanNotAllowed",
            TokenErrorKind::AccountMismatch => "accountMismatch",
            TokenErrorKind::ProviderUnavailable => "providerUnavailable",
        }
    }
}

/// A provisioner that verifies tokens.
pub enum TokenProvisioner {
    Jwk(jwk::JwkProvisioner),
    Oidc(oidc::OidcProvisioner),
}

impl TokenProvisioner {
    pub fn name(&self) -> &str {
        match self {
            TokenProvisioner::Jwk(p) => p.name(),
            TokenProvisioner::Oidc(p) => p.name(),
        }
    }
}

/// An ACME provisioner, ready to serve.
#[derive(Clone, Debug)]
pub struct AcmeProvisioner {
    pub name: String,
    pub token_authorizers: Vec<String>,
    pub token_only: bool,
    pub external_account_required: bool,
    pub caa_check: bool,
}

/// Every configured provisioner, built and checked once at start-up.
pub struct Provisioners {
    acme: BTreeMap<String, Arc<AcmeProvisioner>>,
    tokens: BTreeMap<String, TokenProvisioner>,
    statics: BTreeMap<String, StaticProvisionerConfig>,
    policies: BTreeMap<String, Arc<ProvisionerPolicy>>,
}

/// Names that would collide with the default provisioner's paths under `/acme/`.
const RESERVED_NAMES: [&str; 12] = [
    "new-nonce",
    "new-account",
    "new-order",
    "new-authz",
    "account",
    "order",
    "authz",
    "chall",
    "cert",
    "revoke-cert",
    "key-change",
    "renewal-info",
];

impl Provisioners {
    /// Builds every provisioner; the error names the offending key
    /// (`provisioners.<name>.<key>`).
    pub fn from_config(config: &Config, http: &reqwest::Client) -> Result<Provisioners, String> {
        let global = &config.acme.claims;
        let mut acme = BTreeMap::new();
        let mut tokens = BTreeMap::new();
        let mut statics = BTreeMap::new();
        let mut policies = BTreeMap::new();
        acme.insert(
            DEFAULT_ACME.to_owned(),
            Arc::new(AcmeProvisioner {
                name: DEFAULT_ACME.to_owned(),
                token_authorizers: Vec::new(),
                token_only: false,
                external_account_required: config.acme.external_account_required,
                caa_check: config.acme.caa_check,
            }),
        );
        policies.insert(
            DEFAULT_ACME.to_owned(),
            Arc::new(ProvisionerPolicy {
                name: DEFAULT_ACME.to_owned(),
                claims: global.clone(),
                profiles: Vec::new(),
                chain: Chain::from(config.acme.validators.clone()),
                fixups: config.acme.fixups.clone(),
            }),
        );
        for (name, provisioner) in &config.provisioners {
            let key = format!("provisioners.{name}");
            check_name(name).map_err(|e| format!("{key}: {e}"))?;
            if name == DEFAULT_ACME {
                return Err(format!(
                    "{key}: the name {DEFAULT_ACME:?} is the provisioner configured by [acme]"
                ));
            }
            let policy = match provisioner {
                ProvisionerConfig::Acme(c) => policy_of!(c),
                ProvisionerConfig::Jwk(c) => policy_of!(c),
                ProvisionerConfig::Oidc(c) => policy_of!(c),
                ProvisionerConfig::Static(c) => policy_of!(c),
            };
            let merged = ProvisionerPolicy::new(name, global, policy);
            merged.claims.check(&format!("{key}.claims"))?;
            for profile in &merged.profiles {
                if !config.profiles.profiles.contains_key(profile) {
                    return Err(format!("{key}.profiles: there is no profile {profile:?}"));
                }
            }
            // Every profile it may issue under must fit its claims, or issuance would fail.
            for (profile_name, profile) in &config.profiles.profiles {
                if merged.allows_profile(profile_name) {
                    profile.check(profile_name, &merged.claims).map_err(|e| {
                        format!("{key}: with its claims, {e} (list the profiles it may use in {key}.profiles)")
                    })?;
                }
            }
            policies.insert(name.clone(), Arc::new(merged));
            match provisioner {
                ProvisionerConfig::Acme(c) => {
                    acme.insert(
                        name.clone(),
                        Arc::new(AcmeProvisioner {
                            name: name.clone(),
                            token_authorizers: c.token_authorizers.clone(),
                            token_only: c.token_only,
                            external_account_required: c.external_account_required,
                            caa_check: c.caa_check.unwrap_or(config.acme.caa_check),
                        }),
                    );
                }
                ProvisionerConfig::Jwk(c) => {
                    let p = jwk::JwkProvisioner::new(name, c).map_err(|e| format!("{key}.{e}"))?;
                    tokens.insert(name.clone(), TokenProvisioner::Jwk(p));
                }
                ProvisionerConfig::Oidc(c) => {
                    let p = oidc::OidcProvisioner::new(name, c, http.clone())
                        .map_err(|e| format!("{key}.{e}"))?;
                    tokens.insert(name.clone(), TokenProvisioner::Oidc(p));
                }
                ProvisionerConfig::Static(c) => {
                    if c.user.is_empty() || c.secret.len() < 16 {
                        return Err(format!(
                            "{key}: a static provisioner needs a user and a secret of 16 characters or more"
                        ));
                    }
                    statics.insert(name.clone(), c.clone());
                }
            }
        }
        for (name, provisioner) in &acme {
            for authorizer in &provisioner.token_authorizers {
                if !tokens.contains_key(authorizer) {
                    return Err(format!(
                        "provisioners.{name}.token_authorizers: {authorizer:?} is not a JWK or OIDC provisioner"
                    ));
                }
            }
            if provisioner.token_only && provisioner.token_authorizers.is_empty() {
                return Err(format!(
                    "provisioners.{name}.token_only: set token_authorizers too"
                ));
            }
        }
        Ok(Provisioners {
            acme,
            tokens,
            statics,
            policies,
        })
    }

    /// The ACME provisioner called `name`.
    pub fn acme(&self, name: &str) -> Option<&Arc<AcmeProvisioner>> {
        self.acme.get(name)
    }

    /// Every ACME provisioner's name.
    pub fn acme_names(&self) -> impl Iterator<Item = &str> {
        self.acme.keys().map(String::as_str)
    }

    /// The policy of the provisioner called `name`; the default ACME one for an unknown name
    /// (a provisioner removed from the configuration keeps its accounts working).
    pub fn policy(&self, name: &str) -> Arc<ProvisionerPolicy> {
        self.policies
            .get(name)
            .or_else(|| self.policies.get(DEFAULT_ACME))
            .cloned()
            .expect("the default ACME provisioner always has a policy")
    }

    /// The token provisioner called `name`.
    pub fn token_provisioner(&self, name: &str) -> Option<&TokenProvisioner> {
        self.tokens.get(name)
    }

    /// The static provisioner called `name`.
    pub fn static_provisioner(&self, name: &str) -> Option<&StaticProvisionerConfig> {
        self.statics.get(name)
    }

    /// Verifies `token` with the provisioner it names (a JWK provisioner by `iss`, an OIDC one
    /// by `aud` = its client id), among `allowed` (every token provisioner when `None`).
    /// `audiences` are the `aud` values a JWK token may carry here. Does not check single use:
    /// that is a stored fact the authority records.
    pub async fn verify_token(
        &self,
        token: &str,
        allowed: Option<&[String]>,
        audiences: &[String],
        now: OffsetDateTime,
    ) -> Result<TokenIdentity, TokenError> {
        let jwt = crate::jose::UnverifiedJwt::parse(token)
            .map_err(|e| TokenError::new(TokenErrorKind::Malformed, e.to_string()))?;
        let candidates: Vec<&TokenProvisioner> = self
            .tokens
            .values()
            .filter(|p| allowed.is_none_or(|a| a.iter().any(|n| n == p.name())))
            .collect();
        let iss = jwt.str_claim("iss").unwrap_or_default().to_owned();
        let auds: Vec<String> = jwt.audiences().into_iter().map(str::to_owned).collect();
        // A JWK provisioner by its name in `iss`; an OIDC one by its client id in `aud`, or,
        // when there is one OIDC provisioner here, that one, so that its own checks say what
        // is wrong (a wrong `aud` is `badAudience`, not an unknown provisioner).
        let oidc: Vec<&TokenProvisioner> = candidates
            .iter()
            .copied()
            .filter(|p| matches!(p, TokenProvisioner::Oidc(_)))
            .collect();
        let chosen = candidates
            .iter()
            .copied()
            .find(|p| matches!(p, TokenProvisioner::Jwk(j) if j.name() == iss))
            .or_else(|| {
                oidc.iter().copied().find(
                    |p| matches!(p, TokenProvisioner::Oidc(o) if auds.iter().any(|a| a == o.client_id())),
                )
            })
            .or_else(|| {
                let is_jwk_name = candidates
                    .iter()
                    .any(|p| matches!(p, TokenProvisioner::Jwk(_)) && p.name() == iss);
                (oidc.len() == 1 && !is_jwk_name).then(|| oidc[0])
            });
        match chosen {
            Some(TokenProvisioner::Jwk(p)) => p.verify(&jwt, token, audiences, now),
            Some(TokenProvisioner::Oidc(p)) => p.verify(&jwt, token, now).await,
            None => Err(TokenError::new(
                TokenErrorKind::UnknownProvisioner,
                format!(
                    "no provisioner{} issues tokens with iss {iss:?} and aud {auds:?}",
                    if allowed.is_some() {
                        " allowed here"
                    } else {
                        ""
                    }
                ),
            )),
        }
    }
}

/// Whether `name` is one of the default ACME provisioner's paths under `/acme/`.
pub fn is_reserved_name(name: &str) -> bool {
    RESERVED_NAMES.contains(&name)
}

/// Provisioner names become URL path segments: lower-case letters, digits, `-` and `_`.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !ok {
        return Err(
            "a provisioner name is 1 to 64 lower-case letters, digits, '-' or '_'".to_owned(),
        );
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(format!(
            "{name:?} is reserved: it is a path of the default ACME provisioner"
        ));
    }
    Ok(())
}

/// The SHA-256 of a token, base64url: its single-use id when it has no `jti`.
pub fn token_digest(token: &str) -> String {
    crate::jose::base64url(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref(),
    )
}

/// Default most lifetime of a one-time token.
pub fn default_max_token_lifetime() -> HumanDuration {
    HumanDuration::minutes(5)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str) -> Result<Provisioners, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("mayfly.toml");
        std::fs::write(&path, toml).expect("write");
        let config = Config::load(Some(&path), figment::Figment::new()).map_err(|e| e.0)?;
        Provisioners::from_config(&config, &reqwest::Client::new())
    }

    /// Each bad provisioner stops start-up with a message that names its key.
    #[test]
    fn bad_provisioners_are_named() {
        let cases: [(&str, &str, &str); 9] = [
            (
                "upper-case name",
                "[provisioners.Teams]\ntype = \"acme\"\n",
                "provisioners.Teams: a provisioner name is 1 to 64 lower-case letters",
            ),
            (
                "a name that is a path",
                "[provisioners.order]\ntype = \"acme\"\n",
                "provisioners.order: \"order\" is reserved",
            ),
            (
                "the default's name",
                "[provisioners.acme]\ntype = \"acme\"\n",
                "provisioners.acme: the name \"acme\" is the provisioner configured by [acme]",
            ),
            (
                "an unknown type",
                "[provisioners.x]\ntype = \"ldap\"\n",
                "provisioners.x",
            ),
            (
                "an unknown key",
                "[provisioners.x]\ntype = \"acme\"\ntoken_authorisers = []\n",
                "token_authorisers",
            ),
            (
                "an authorizer that is not a token provisioner",
                "[provisioners.x]\ntype = \"acme\"\ntoken_authorizers = [\"y\"]\n[provisioners.y]\ntype = \"acme\"\n",
                "provisioners.x.token_authorizers: \"y\" is not a JWK or OIDC provisioner",
            ),
            (
                "token_only without authorizers",
                "[provisioners.x]\ntype = \"acme\"\ntoken_only = true\n",
                "provisioners.x.token_only: set token_authorizers too",
            ),
            (
                "an unknown profile",
                "[provisioners.x]\ntype = \"acme\"\nprofiles = [\"nope\"]\n",
                "provisioners.x.profiles: there is no profile \"nope\"",
            ),
            (
                "claims that exclude an allowed profile",
                "[provisioners.x]\ntype = \"acme\"\nclaims = { max_cert_duration = \"2h\", default_cert_duration = \"1h\" }\n",
                "provisioners.x: with its claims, profiles.",
            ),
        ];
        for (name, toml, want) in cases {
            let error = load(toml).err().unwrap_or_else(|| panic!("{name}: loaded"));
            assert!(error.contains(want), "{name}: {error}");
        }
    }

    #[test]
    fn a_static_provisioner_needs_a_real_secret() {
        let error =
            load("[provisioners.dev]\ntype = \"static\"\nuser = \"dev\"\nsecret = \"short\"\n")
                .err()
                .expect("refused");
        assert!(error.contains("provisioners.dev"), "{error}");
        assert!(
            load("[provisioners.dev]\ntype = \"static\"\nuser = \"dev\"\nsecret = \"sixteen-chars-ok\"\n")
                .is_ok()
        );
    }

    #[test]
    fn policies_merge_claims_and_fall_back_to_the_default() {
        let provisioners = load(
            "[provisioners.teams]\ntype = \"acme\"\nprofiles = [\"shortlived\"]\n\
             claims = { max_cert_duration = \"7d\", default_cert_duration = \"2h\" }\n",
        )
        .expect("loads");
        let teams = provisioners.policy("teams");
        assert_eq!(teams.claims.default_cert_duration, HumanDuration::hours(2));
        assert!(teams.allows_profile("shortlived"));
        assert!(!teams.allows_profile("hours"));
        let default = provisioners.policy(DEFAULT_ACME);
        assert!(default.allows_profile("hours"));
        // An account of a provisioner removed from the configuration keeps the default policy.
        assert_eq!(provisioners.policy("gone").name, DEFAULT_ACME);
        assert_eq!(
            provisioners.acme_names().collect::<Vec<_>>(),
            vec![DEFAULT_ACME, "teams"]
        );
    }

    #[test]
    fn an_identity_allows_its_names_or_any_as_admin() {
        let mut identity = TokenIdentity {
            provisioner: "ops".into(),
            subject: "web".into(),
            sans: vec!["web.example.com".into()],
            email: None,
            groups: Vec::new(),
            admin: false,
            token_id: "j".into(),
            expires_at: OffsetDateTime::UNIX_EPOCH,
            account_thumbprint: None,
        };
        let web = Identifier::parse("dns", "WEB.example.com").expect("a name");
        let other = Identifier::parse("dns", "db.example.com").expect("a name");
        assert!(identity.allows(&web));
        assert!(!identity.allows(&other));
        identity.admin = true;
        assert!(identity.allows(&other));
    }
}
