//! OIDC provisioners: ID tokens from an identity provider (Google, Okta, Keycloak, Dex …),
//! as step-ca's OIDC provisioner. Discovery and the JWKS are fetched over HTTPS and cached
//! ([`provider`]); this file checks the configuration and the claims (OpenID Connect Core 1.0
//! §3.1.3.7).
//!
//! **Binding a token to an ACME account** (for `tkauth-01`): the client sets the OIDC `nonce`
//! of its authentication request to the RFC 7638 thumbprint of its ACME account key; the
//! provider copies it into the ID token, and Mayfly reads it as
//! [`TokenIdentity::account_thumbprint`]. A `cnf.jkt` claim (RFC 7800 §3.1, RFC 9449), where a
//! provider can add one, takes precedence.

pub mod provider;

use std::path::{Path, PathBuf};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use url::Url;

use self::provider::{FETCH_TIMEOUT, Provider, WELL_KNOWN_PATH};
use super::{TokenError, TokenErrorKind, TokenIdentity, token_digest};
use crate::config::HumanDuration;
use crate::jose::{JoseError, UnverifiedJwt};
use crate::policy::PartialClaims;
use crate::policy::fixups::FixupList;
use crate::policy::validators::ValidatorList;

/// `[provisioners.<name>]` with `type = "oidc"`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcProvisionerConfig {
    /// The `aud` ID tokens must carry.
    pub client_id: String,
    /// `https://…/.well-known/openid-configuration`.
    pub configuration_endpoint: String,
    /// Emails allowed any SANs (compared without regard to case).
    pub admins: Vec<String>,
    /// Email domains allowed in, exactly (a subdomain is another domain); empty: every domain.
    pub domains: Vec<String>,
    /// The claim that lists the user's groups (for the `server_group` validator).
    pub groups_claim: Option<String>,
    /// Tolerated clock difference for `exp`, `nbf` and `iat`.
    pub clock_skew: HumanDuration,
    /// PEM bundle trusted for the provider's HTTPS, instead of the system roots.
    pub ca_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claims: Option<PartialClaims>,
    pub profiles: Vec<String>,
    pub validators: ValidatorList,
    pub fixups: FixupList,
}

impl Default for OidcProvisionerConfig {
    fn default() -> Self {
        OidcProvisionerConfig {
            client_id: String::new(),
            configuration_endpoint: String::new(),
            admins: Vec::new(),
            domains: Vec::new(),
            groups_claim: None,
            clock_skew: HumanDuration::seconds(60),
            ca_file: None,
            claims: None,
            profiles: Vec::new(),
            validators: ValidatorList::default(),
            fixups: FixupList::default(),
        }
    }
}

/// The most clock skew the configuration may allow: more would keep an expired ID token
/// (they live about an hour) usable for a good part of another.
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(10);

/// The algorithms ID tokens may be signed with: RS256, the default of OpenID Connect Core
/// §3.1.3.7 (every provider offers it), and ES256, which the others use.
pub const ID_TOKEN_ALGORITHMS: [&str; 2] = ["RS256", "ES256"];

/// An OIDC provisioner, ready to verify ID tokens.
pub struct OidcProvisioner {
    name: String,
    client_id: String,
    /// Lower-case.
    admins: Vec<String>,
    /// Lower-case.
    domains: Vec<String>,
    groups_claim: Option<String>,
    clock_skew: Duration,
    /// Boxed: the cache is large, and `TokenProvisioner` holds provisioners by value.
    provider: Box<Provider>,
}

impl OidcProvisioner {
    /// Builds it from its configuration; nothing is fetched yet. The error starts with the key
    /// it is about (`client_id: …`). With a `ca_file`, the provider is reached with a client of
    /// its own that trusts only that bundle; otherwise with `http`.
    pub fn new(
        name: &str,
        config: &OidcProvisionerConfig,
        http: reqwest::Client,
    ) -> Result<Self, String> {
        let client_id = config.client_id.trim();
        if client_id.is_empty() {
            return Err(
                "client_id: set the OAuth client id the provider issues ID tokens to (their aud)"
                    .to_owned(),
            );
        }
        let endpoint = configuration_endpoint(&config.configuration_endpoint)
            .map_err(|e| format!("configuration_endpoint: {e}"))?;
        let admins = config
            .admins
            .iter()
            .map(|admin| email_address(admin))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("admins: {e}"))?;
        let domains = config
            .domains
            .iter()
            .map(|domain| domain_name(domain))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("domains: {e}"))?;
        if config
            .groups_claim
            .as_ref()
            .is_some_and(|claim| claim.trim().is_empty())
        {
            return Err("groups_claim: name a claim, or leave the key out".to_owned());
        }
        let clock_skew = config.clock_skew.0;
        if clock_skew.is_negative() || clock_skew > MAX_CLOCK_SKEW {
            return Err(format!(
                "clock_skew: {} is not between 0s and {}",
                config.clock_skew,
                HumanDuration(MAX_CLOCK_SKEW)
            ));
        }
        let http = match &config.ca_file {
            Some(path) => client_trusting(path).map_err(|e| format!("ca_file: {e}"))?,
            None => http,
        };
        Ok(OidcProvisioner {
            name: name.to_owned(),
            client_id: client_id.to_owned(),
            admins,
            domains,
            groups_claim: config.groups_claim.clone(),
            clock_skew,
            provider: Box::new(Provider::new(endpoint, http)),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Verifies an ID token (OpenID Connect Core §3.1.3.7), in this order: the algorithm
    /// (RS256, ES256), the key (`kid`) in the provider's JWKS, the signature, `iss`, `aud` and
    /// `azp`, `exp`, `nbf` and `iat` (with the clock skew), `sub`, `email` and
    /// `email_verified`, the email's domain; then who is an admin and which groups they are
    /// in. `now` also decides what is fresh in the provider cache.
    pub async fn verify(
        &self,
        jwt: &UnverifiedJwt,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<TokenIdentity, TokenError> {
        let alg = jwt.header.alg.as_str();
        if !ID_TOKEN_ALGORITHMS.contains(&alg) {
            return Err(TokenError::new(
                TokenErrorKind::BadSignature,
                format!(
                    "the ID token is signed with {alg}; OIDC provisioners accept RS256 and ES256"
                ),
            ));
        }
        let kid = jwt.header.kid.as_deref();
        let resolved = self.provider.resolve(kid, alg, now).await?;
        jwt.verify(&resolved.key).map_err(|e| {
            let detail = match e {
                JoseError::BadSignature => format!(
                    "the ID token's signature does not verify with the provider's key {}",
                    kid.unwrap_or("(the only one)")
                ),
                other => format!("the ID token does not verify: {other}"),
            };
            TokenError::new(TokenErrorKind::BadSignature, detail)
        })?;
        self.check_issuer_and_audience(jwt, &resolved.issuer)?;
        let expires_at = self.check_times(jwt, now)?;
        let subject = jwt
            .str_claim("sub")
            .filter(|sub| !sub.is_empty())
            .ok_or_else(|| malformed("the ID token has no sub claim"))?;
        let email = self.check_email(jwt)?;
        let lower = email.to_ascii_lowercase();
        Ok(TokenIdentity {
            provisioner: self.name.clone(),
            subject: subject.to_owned(),
            // step-ca: a non-admin gets their own email as the one SAN; an admin gets it too,
            // and `admin` lets them ask for any name.
            sans: vec![email.to_owned()],
            email: Some(email.to_owned()),
            groups: self.groups(jwt)?,
            admin: self.admins.contains(&lower),
            token_id: match jwt.str_claim("jti") {
                Some(jti) if !jti.is_empty() => jti.to_owned(),
                _ => token_digest(token),
            },
            expires_at,
            account_thumbprint: account_thumbprint(jwt)?,
        })
    }

    /// `iss` is the provider's issuer exactly; `aud` holds the client id, and with several
    /// audiences an `azp` must be the client id (OpenID Connect Core §3.1.3.7, items 2 to 5).
    fn check_issuer_and_audience(
        &self,
        jwt: &UnverifiedJwt,
        issuer: &str,
    ) -> Result<(), TokenError> {
        let iss = jwt.str_claim("iss");
        if iss != Some(issuer) {
            return Err(TokenError::new(
                TokenErrorKind::BadIssuer,
                format!(
                    "the ID token's iss {} is not the provider's issuer {issuer:?}",
                    quoted_or_missing(iss)
                ),
            ));
        }
        let audiences = jwt.audiences();
        if !audiences.contains(&self.client_id.as_str()) {
            return Err(TokenError::new(
                TokenErrorKind::BadAudience,
                format!(
                    "the ID token's aud {audiences:?} does not hold the client id {:?}",
                    self.client_id
                ),
            ));
        }
        if audiences.len() > 1
            && let Some(azp) = jwt.claims.get("azp")
            && azp.as_str() != Some(self.client_id.as_str())
        {
            return Err(TokenError::new(
                TokenErrorKind::BadAudience,
                format!(
                    "the ID token has several audiences and its azp {azp} is not the client id {:?}",
                    self.client_id
                ),
            ));
        }
        Ok(())
    }

    /// `exp` (required) is not past, `nbf` and `iat` are not ahead, each by more than the
    /// clock skew. Returns `exp`.
    fn check_times(
        &self,
        jwt: &UnverifiedJwt,
        now: OffsetDateTime,
    ) -> Result<OffsetDateTime, TokenError> {
        let skew = self.clock_skew;
        let claim = |name: &str| -> Result<Option<OffsetDateTime>, TokenError> {
            jwt.time_claim(name)
                .map_err(|e| malformed(e.to_string()))?
                .map(|seconds| {
                    OffsetDateTime::from_unix_timestamp(seconds)
                        .map_err(|_| malformed(format!("the {name} claim is out of range")))
                })
                .transpose()
        };
        let exp = claim("exp")?.ok_or_else(|| malformed("the ID token has no exp claim"))?;
        // Checked: the times come from the token, and may sit at the ends of what time holds.
        if exp
            .checked_add(skew)
            .is_some_and(|deadline| deadline <= now)
        {
            return Err(TokenError::new(
                TokenErrorKind::Expired,
                format!(
                    "the ID token expired at {} (clock skew allowed: {})",
                    rfc3339(exp),
                    HumanDuration(skew)
                ),
            ));
        }
        for name in ["nbf", "iat"] {
            if let Some(at) = claim(name)?
                && at.checked_sub(skew).is_some_and(|earliest| earliest > now)
            {
                return Err(TokenError::new(
                    TokenErrorKind::NotYetValid,
                    format!(
                        "the ID token's {name} {} is in the future (clock skew allowed: {})",
                        rfc3339(at),
                        HumanDuration(skew)
                    ),
                ));
            }
        }
        Ok(exp)
    }

    /// `email` is there and verified, and its domain is one of `domains` (when set).
    fn check_email<'a>(&self, jwt: &'a UnverifiedJwt) -> Result<&'a str, TokenError> {
        let email = jwt.str_claim("email").ok_or_else(|| {
            malformed("the ID token has no email claim (the client must ask for the email scope)")
        })?;
        let domain = match email.rsplit_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() => domain,
            _ => {
                return Err(malformed(format!(
                    "the ID token's email {email:?} is not an email address"
                )));
            }
        };
        // Some providers send the boolean as a string.
        let verified = match jwt.claims.get("email_verified") {
            Some(Value::Bool(verified)) => *verified,
            Some(Value::String(text)) => text == "true",
            _ => false,
        };
        if !verified {
            let said = jwt
                .claims
                .get("email_verified")
                .map_or_else(|| "missing".to_owned(), Value::to_string);
            return Err(TokenError::new(
                TokenErrorKind::EmailNotVerified,
                format!(
                    "the provider has not verified the email {email} (email_verified is {said})"
                ),
            ));
        }
        let domain = domain.to_ascii_lowercase();
        if !self.domains.is_empty() && !self.domains.contains(&domain) {
            return Err(TokenError::new(
                TokenErrorKind::DomainNotAllowed,
                format!(
                    "the email domain {domain} is not one of this provisioner's domains {:?}",
                    self.domains
                ),
            ));
        }
        Ok(email)
    }

    /// The `groups_claim`: an array of strings, or one string.
    fn groups(&self, jwt: &UnverifiedJwt) -> Result<Vec<String>, TokenError> {
        let Some(claim) = &self.groups_claim else {
            return Ok(Vec::new());
        };
        let not_groups = || {
            malformed(format!(
                "the ID token's {claim} claim is not a list of group names"
            ))
        };
        match jwt.claims.get(claim) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(group)) => Ok(vec![group.clone()]),
            Some(Value::Array(groups)) => groups
                .iter()
                .map(|g| g.as_str().map(str::to_owned).ok_or_else(not_groups))
                .collect(),
            Some(_) => Err(not_groups()),
        }
    }
}

/// The account key thumbprint the token is bound to: `cnf.jkt` (RFC 7800 §3.1), else a
/// `nonce` that has the shape of one (43 base64url characters: a SHA-256 thumbprint, RFC
/// 7638). A nonce of another shape is an ordinary OIDC nonce and binds nothing.
fn account_thumbprint(jwt: &UnverifiedJwt) -> Result<Option<String>, TokenError> {
    if let Some(cnf) = jwt.claims.get("cnf") {
        let jkt = cnf.get("jkt").and_then(Value::as_str);
        return match jkt {
            Some(jkt) if is_thumbprint(jkt) => Ok(Some(jkt.to_owned())),
            Some(_) => Err(malformed(
                "the ID token's cnf.jkt is not an RFC 7638 SHA-256 thumbprint",
            )),
            // A confirmation by other means (RFC 7800 `jwk`, `x5t#S256`) binds no ACME key.
            None => Ok(nonce_thumbprint(jwt)),
        };
    }
    Ok(nonce_thumbprint(jwt))
}

fn nonce_thumbprint(jwt: &UnverifiedJwt) -> Option<String> {
    jwt.str_claim("nonce")
        .filter(|nonce| is_thumbprint(nonce))
        .map(str::to_owned)
}

/// base64url (no padding) of 32 bytes.
fn is_thumbprint(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The configuration endpoint: an https URL (http to loopback) ending in
/// `/.well-known/openid-configuration`.
fn configuration_endpoint(text: &str) -> Result<Url, String> {
    if text.trim().is_empty() {
        return Err(format!("set the provider's https://…{WELL_KNOWN_PATH} URL"));
    }
    let url = Url::parse(text.trim()).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    provider::check_url(&url)?;
    if !url.path().ends_with(WELL_KNOWN_PATH) {
        return Err(format!(
            "{url} does not end with {WELL_KNOWN_PATH} (OpenID Connect Discovery §4); give the whole URL, not the issuer"
        ));
    }
    Ok(url)
}

/// An admin's email, lower-cased.
fn email_address(text: &str) -> Result<String, String> {
    let email = text.trim().to_ascii_lowercase();
    match email.rsplit_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !email.contains(' ') =>
        {
            Ok(email)
        }
        _ => Err(format!("{text:?} is not an email address")),
    }
}

/// An allowed email domain, lower-cased.
fn domain_name(text: &str) -> Result<String, String> {
    let domain = text.trim().to_ascii_lowercase();
    let ok = !domain.is_empty()
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !ok {
        return Err(format!("{text:?} is not a domain name (write example.com)"));
    }
    Ok(domain)
}

/// A client that trusts only the certificates of the PEM bundle at `path`.
fn client_trusting(path: &Path) -> Result<reqwest::Client, String> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| format!("{shown}: {e}"))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{shown}: not a PEM bundle: {e}"))?;
    if certificates.is_empty() {
        return Err(format!("{shown} holds no PEM certificate"));
    }
    let roots = certificates
        .iter()
        .map(|der| reqwest::Certificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{shown}: {e}"))?;
    reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .tls_certs_only(roots)
        .build()
        .map_err(|e| format!("{shown}: {e}"))
}

fn malformed(detail: impl Into<String>) -> TokenError {
    TokenError::new(TokenErrorKind::Malformed, detail)
}

fn quoted_or_missing(value: Option<&str>) -> String {
    value.map_or_else(|| "(missing)".to_owned(), |v| format!("{v:?}"))
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::{SigningKey, base64url, sign_jwt};
    use serde_json::json;

    fn config() -> OidcProvisionerConfig {
        OidcProvisionerConfig {
            client_id: "mayfly".into(),
            configuration_endpoint: format!("https://idp.example.com{WELL_KNOWN_PATH}"),
            ..OidcProvisionerConfig::default()
        }
    }

    fn build(config: &OidcProvisionerConfig) -> Result<OidcProvisioner, String> {
        OidcProvisioner::new("corp", config, reqwest::Client::new())
    }

    #[test]
    fn configuration_is_checked() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").expect("written");
        type Change = fn(&mut OidcProvisionerConfig, &Path);
        let cases: [(&str, Change, &str); 12] = [
            (
                "empty client_id",
                |c, _| c.client_id = " ".into(),
                "client_id: ",
            ),
            (
                "no endpoint",
                |c, _| c.configuration_endpoint.clear(),
                "configuration_endpoint: ",
            ),
            (
                "not a URL",
                |c, _| c.configuration_endpoint = "idp".into(),
                "configuration_endpoint: ",
            ),
            (
                "plain http",
                |c, _| {
                    c.configuration_endpoint = format!("http://idp.example.com{WELL_KNOWN_PATH}")
                },
                "configuration_endpoint: ",
            ),
            (
                "the issuer only",
                |c, _| c.configuration_endpoint = "https://idp.example.com".into(),
                "configuration_endpoint: ",
            ),
            (
                "an admin that is no email",
                |c, _| c.admins = vec!["root".into()],
                "admins: ",
            ),
            (
                "a domain with an @",
                |c, _| c.domains = vec!["@example.com".into()],
                "domains: ",
            ),
            (
                "an empty groups claim",
                |c, _| c.groups_claim = Some(String::new()),
                "groups_claim: ",
            ),
            (
                "a negative skew",
                |c, _| c.clock_skew = HumanDuration::seconds(-1),
                "clock_skew: ",
            ),
            (
                "too much skew",
                |c, _| c.clock_skew = HumanDuration::minutes(11),
                "clock_skew: ",
            ),
            (
                "a missing ca_file",
                |c, dir| c.ca_file = Some(dir.join("nope.pem")),
                "ca_file: ",
            ),
            (
                "a ca_file without certificates",
                |c, dir| c.ca_file = Some(dir.join("empty.pem")),
                "ca_file: ",
            ),
        ];
        for (name, change, prefix) in cases {
            let mut config = config();
            change(&mut config, dir.path());
            match build(&config) {
                Ok(_) => panic!("{name}: accepted"),
                Err(e) => assert!(e.starts_with(prefix), "{name}: {e}"),
            }
        }
    }

    #[test]
    fn loopback_http_admins_and_domains_are_normalised() {
        let mut config = config();
        config.configuration_endpoint = format!("http://127.0.0.1:5556/dex{WELL_KNOWN_PATH}");
        config.admins = vec![" Ops@Example.COM ".into()];
        config.domains = vec!["Example.COM".into()];
        config.clock_skew = HumanDuration::minutes(10);
        let provisioner = build(&config).expect("accepted");
        assert_eq!(provisioner.admins, vec!["ops@example.com"]);
        assert_eq!(provisioner.domains, vec!["example.com"]);
        assert_eq!(provisioner.client_id(), "mayfly");
    }

    #[test]
    fn the_account_binding_is_cnf_jkt_else_a_thumbprint_shaped_nonce() {
        let thumbprint = SigningKey::generate_p256().jwk().thumbprint();
        let other = SigningKey::generate_p256().jwk().thumbprint();
        let key = SigningKey::generate_p256();
        let cases = [
            ("nothing", json!({}), Ok(None)),
            (
                "a nonce thumbprint",
                json!({"nonce": thumbprint}),
                Ok(Some(thumbprint.clone())),
            ),
            (
                "an ordinary nonce",
                json!({"nonce": "n-0S6_WzA2Mj"}),
                Ok(None),
            ),
            (
                "cnf.jkt",
                json!({"cnf": {"jkt": thumbprint}}),
                Ok(Some(thumbprint.clone())),
            ),
            (
                "cnf.jkt wins over the nonce",
                json!({"cnf": {"jkt": thumbprint}, "nonce": other}),
                Ok(Some(thumbprint.clone())),
            ),
            (
                "cnf without jkt",
                json!({"cnf": {"x5t#S256": "x"}, "nonce": other}),
                Ok(Some(other.clone())),
            ),
            (
                "a bad cnf.jkt",
                json!({"cnf": {"jkt": "abc"}}),
                Err(TokenErrorKind::Malformed),
            ),
        ];
        for (name, claims, expected) in cases {
            let jwt = UnverifiedJwt::parse(&sign_jwt(&key, None, &claims)).expect("parses");
            assert_eq!(
                account_thumbprint(&jwt).map_err(|e| e.kind),
                expected,
                "{name}"
            );
        }
        assert!(is_thumbprint(&base64url(&[0xff; 32])));
    }
}
