//! Typed configuration with one source of truth (ARCHITECTURE decision 8): defaults, then
//! the TOML file, then `MAYFLY__SECTION__KEY` environment variables, then command-line flags.
//! Unknown keys and bad values stop start-up with a message that names the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::issuer::KeyType;
use crate::policy::fixups::FixupList;
use crate::policy::validators::ValidatorList;
use crate::policy::{Claims, Profiles};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub ca: CaConfig,
    pub acme: AcmeConfig,
    pub validation: ValidationConfig,
    pub crl: CrlConfig,
    /// Certificate profiles (draft-ietf-acme-profiles): `default = "<name>"`,
    /// `builtin = true|false` and one `[profiles.<name>]` table each. The built-in ones
    /// (shortlived, hours, tlsclient) are there unless `builtin = false`.
    pub profiles: Profiles,
    pub renewal: crate::policy::renewal::RenewalSettings,
    /// Provisioners besides the default ACME one (`[acme]`): `[provisioners.<name>]` with
    /// `type = "acme" | "jwk" | "oidc" | "static"`.
    pub provisioners: std::collections::BTreeMap<String, crate::provisioner::ProvisionerConfig>,
    pub metrics: MetricsConfig,
    /// The admin API (issue 7): a separate HTTPS listener with mutual TLS.
    pub admin: AdminConfig,
    pub log: LogConfig,
    pub jobs: JobsConfig,
    pub alerts: AlertsConfig,
    pub testing: TestingConfig,
    /// Per-hour limits on new accounts, new orders and failed validations (issue 7).
    pub rate_limits: RateLimitsConfig,
}

// --- audit log and rate limits (issue 7) ---

/// Rate limits, counted over a sliding hour in the database, so every replica sees the same
/// counts. 0 turns a limit off. Going over answers `rateLimited` (RFC 8555 §6.7) with
/// `Retry-After` (§6.6).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitsConfig {
    /// Accounts created from one client address (creations only, not lookups).
    pub new_accounts_per_ip_per_hour: u32,
    /// Orders created by one account; an ARI replacement inside its window does not count.
    pub new_orders_per_account_per_hour: u32,
    /// Failed validations of one identifier by one account; at the limit, newOrder and
    /// newAuthz for that identifier by that account are refused.
    pub failed_validations_per_identifier_per_account_per_hour: u32,
    /// Proxies whose `X-Forwarded-For` names the client for the per-address limit; empty:
    /// the TCP peer is the client.
    pub trusted_proxies: Vec<crate::policy::validators::Cidr>,
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        // Let's Encrypt's limits, per hour, for an internal CA: generous but finite.
        RateLimitsConfig {
            new_accounts_per_ip_per_hour: 10,
            new_orders_per_account_per_hour: 300,
            failed_validations_per_identifier_per_account_per_hour: 5,
            trusted_proxies: Vec::new(),
        }
    }
}
// --- end of audit log and rate limits ---

/// Prometheus metrics (`GET /metrics` on the main listener).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `GET /metrics`; when false the route answers 404 and nothing is recorded.
    pub enabled: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { enabled: true }
    }
}

/// Periodic jobs (`[jobs]`). Each runs on one replica at a time: the one holding its lease
/// in the database, which it renews every run and loses when it stops running.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// How often each job runs (purges, renewal alerts, the renewal gauges).
    pub interval: HumanDuration,
    /// Orders that never got a certificate, and authorizations no order uses, are deleted
    /// this long after they expire; until then a client can still fetch them.
    pub order_retention: HumanDuration,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            interval: HumanDuration::minutes(1),
            order_retention: HumanDuration::hours(24),
        }
    }
}

/// Alerts about certificates whose renewal window (RFC 9773) passed without a renewal: a
/// client stopped renewing (`[alerts]`). Each is reported once, by one replica, as a JSON
/// POST to the webhook, and counted in `mayfly_certificates_renewal_overdue`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Where alerts are POSTed; none: no webhook (the gauges still count them).
    pub webhook_url: Option<String>,
    /// PEM file of the CAs the webhook's HTTPS certificate must chain to; default: the
    /// system's roots.
    pub webhook_ca_file: Option<PathBuf>,
    /// How long one delivery attempt may take.
    pub timeout: HumanDuration,
    /// Attempts per alert and run; after the last one the alert waits for the next run.
    pub attempts: u32,
    /// The wait before the second attempt; it doubles for each one after.
    pub backoff: HumanDuration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            webhook_url: None,
            webhook_ca_file: None,
            timeout: HumanDuration::seconds(10),
            attempts: 5,
            backoff: HumanDuration::seconds(2),
        }
    }
}

/// The log written to standard error (the level comes from the `MAYFLY_LOG` variable).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (one human-readable line per event) or `json` (one JSON object per line).
    pub format: LogFormat,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Knobs that make Mayfly misbehave on purpose, so clients' error handling can be tested.
/// Never set them in production.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TestingConfig {
    /// Share of otherwise valid nonces rejected with `badNonce`, in percent (as Pebble's
    /// PEBBLE_WFE_NONCEREJECT). Clients must retry; never the nonce sent with a `badNonce`,
    /// nor the same key twice in a row, so one retry always makes progress.
    pub nonce_reject_percent: u8,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address of the HTTPS listener.
    pub listen: SocketAddr,
    /// Holds the CA, the server's certificate and (by default) the SQLite database.
    pub data_dir: PathBuf,
    /// Extra names for the server's own certificate (localhost, 127.0.0.1 and ::1 are always in).
    pub hostnames: Vec<String>,
    /// The base URL clients use, if it differs from `https://<listen>` (a proxy, a DNS name).
    pub external_url: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 14000)),
            data_dir: PathBuf::from("./mayfly-data"),
            hostnames: Vec::new(),
            external_url: None,
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://…` or `postgres://…`; default: `mayfly.db` in the data directory.
    pub url: Option<String>,
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            max_connections: 8,
        }
    }
}

/// The URL may carry a password: `Debug` shows only its scheme and host.
impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("REDACTED"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaConfig {
    pub key_type: KeyType,
    pub root_common_name: String,
    pub intermediate_common_name: String,
    pub root_validity: HumanDuration,
    pub intermediate_validity: HumanDuration,
}

impl Default for CaConfig {
    fn default() -> Self {
        CaConfig {
            key_type: KeyType::P256,
            root_common_name: "Mayfly Root CA".into(),
            intermediate_common_name: "Mayfly Intermediate CA".into(),
            root_validity: HumanDuration::hours(10 * 365 * 24),
            intermediate_validity: HumanDuration::hours(5 * 365 * 24),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AcmeConfig {
    /// `meta.termsOfService`; when set, `newAccount` requires `termsOfServiceAgreed`.
    pub terms_of_service: Option<String>,
    pub website: Option<String>,
    /// `meta.caaIdentities`, and the issuer domain names a CAA `issue` record must name.
    pub caa_identities: Vec<String>,
    /// Check CAA (RFC 8659) before an authorization becomes valid.
    pub caa_check: bool,
    /// How long a nonce stays redeemable.
    pub nonce_lifetime: HumanDuration,
    /// `meta.externalAccountRequired`: newAccount must carry an External Account Binding.
    pub external_account_required: bool,
    /// Most order URLs on one page of an account's orders list.
    pub orders_page_size: u32,
    /// The bounds of every certificate lifetime (`[acme.claims]`); profiles narrow them.
    /// Per-provisioner overrides come with provisioners (`policy::PartialClaims`).
    pub claims: Claims,
    /// The validator chain every ACME request passes (`[[acme.validators]]`), in order:
    /// identifier rules at newOrder, CSR rules at finalize, template rules after the fixups.
    pub validators: ValidatorList,
    /// The fixups applied to every ACME request after validation (`[[acme.fixups]]`), in order.
    pub fixups: FixupList,
}

impl Default for AcmeConfig {
    fn default() -> Self {
        AcmeConfig {
            terms_of_service: None,
            website: None,
            caa_identities: Vec::new(),
            caa_check: true,
            nonce_lifetime: HumanDuration::hours(1),
            external_account_required: false,
            orders_page_size: 100,
            claims: Claims::default(),
            validators: ValidatorList::default(),
            fixups: FixupList::default(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationConfig {
    /// `host:port` of the DNS server validation asks; default: the system's resolvers.
    pub dns_resolver: Option<SocketAddr>,
    pub http01_port: u16,
    pub tls_alpn01_port: u16,
    /// Upper bound on one validation.
    pub timeout: HumanDuration,
    /// Validations in flight at once.
    pub max_concurrent: usize,
    /// How long the challenge POST waits for its validation before it answers `processing`;
    /// `0s` answers at once.
    pub answer_within: HumanDuration,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        ValidationConfig {
            dns_resolver: None,
            http01_port: 80,
            tls_alpn01_port: 443,
            timeout: HumanDuration::seconds(10),
            max_concurrent: 32,
            answer_within: HumanDuration::seconds(1),
        }
    }
}

/// Certificate revocation lists (RFC 5280 §5), one per issuer, served over plain HTTP.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrlConfig {
    /// Address of the plain-HTTP listener that serves `GET /crl/<issuer>.crl`.
    pub listen: SocketAddr,
    /// The CRL distribution point put in every leaf; default `http://<listen>/crl/<issuer>.crl`.
    pub url: Option<String>,
    /// nextUpdate = thisUpdate + this.
    pub next_update: HumanDuration,
    /// How often each replica signs a fresh CRL (besides right after each revocation).
    pub regenerate_every: HumanDuration,
}

impl Default for CrlConfig {
    fn default() -> Self {
        CrlConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 14080)),
            url: None,
            next_update: HumanDuration::hours(24),
            regenerate_every: HumanDuration::hours(1),
        }
    }
}

// --- admin API (issue 7) ---

/// The admin API's listener (`[admin]`): HTTPS with a client certificate required at the
/// handshake, and the `admin` role checked on every request.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Start the admin listener with `serve`.
    pub enabled: bool,
    /// Address of the admin listener; loopback by default, so only the CA host can reach it.
    pub listen: SocketAddr,
    /// The admin listener's certificate chain (PEM); default: the main listener's
    /// certificate (`server.pem`, signed by Mayfly's own CA).
    pub cert_file: Option<PathBuf>,
    /// The key of `cert_file` (PEM); set both or neither.
    pub key_file: Option<PathBuf>,
    /// The CA (PEM) that admin client certificates must chain to; default: Mayfly's root.
    pub ca_file: Option<PathBuf>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 14443)),
            cert_file: None,
            key_file: None,
            ca_file: None,
        }
    }
}
// --- end of admin API (issue 7) ---

impl Config {
    /// Layers defaults, `file` (which must exist when given), the environment and `overrides`
    /// (flags, as a figment of their own), then checks the result.
    pub fn load(file: Option<&Path>, overrides: Figment) -> Result<Config, ConfigError> {
        let mut layers = Figment::new();
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError(format!(
                    "configuration file {} does not exist",
                    path.display()
                )));
            }
            layers = layers.merge(Toml::file_exact(path));
        }
        layers = layers
            .merge(Env::prefixed("MAYFLY__").split("__"))
            .merge(overrides);
        // figment merges maps key by key, so a `[profiles.<name>]` table adds a profile to the
        // built-in ones, or changes the keys it sets of a built-in one. `profiles.builtin =
        // false` has to be known before layering, to leave the built-in ones out of the
        // defaults.
        let mut defaults = Config::default();
        if !builtin_profiles(&layers)? {
            defaults.profiles.builtin = false;
            defaults.profiles.profiles.clear();
        }
        let figment = Figment::from(Serialized::defaults(defaults)).merge(layers);
        let config: Config = figment.extract().map_err(|e| ConfigError(describe(e)))?;
        config.check()?;
        Ok(config)
    }

    /// Checks that go beyond types.
    fn check(&self) -> Result<(), ConfigError> {
        if self.admin.cert_file.is_some() != self.admin.key_file.is_some() {
            return Err(ConfigError(
                "admin.cert_file and admin.key_file go together: set both or neither".into(),
            ));
        }
        self.acme.claims.check("acme.claims").map_err(ConfigError)?;
        self.profiles
            .check(&self.acme.claims)
            .map_err(ConfigError)?;
        let positive = [
            ("acme.nonce_lifetime", &self.acme.nonce_lifetime),
            ("validation.timeout", &self.validation.timeout),
            ("ca.root_validity", &self.ca.root_validity),
            ("ca.intermediate_validity", &self.ca.intermediate_validity),
            ("crl.next_update", &self.crl.next_update),
            ("crl.regenerate_every", &self.crl.regenerate_every),
            ("jobs.interval", &self.jobs.interval),
            ("alerts.timeout", &self.alerts.timeout),
        ];
        for (key, value) in positive {
            if value.0 <= time::Duration::ZERO {
                return Err(ConfigError(format!("{key} must be longer than zero")));
            }
        }
        if self.ca.intermediate_validity.0 > self.ca.root_validity.0 {
            return Err(ConfigError(
                "ca.intermediate_validity must not exceed ca.root_validity".into(),
            ));
        }
        if self.jobs.order_retention.0 < time::Duration::ZERO
            || self.alerts.backoff.0 < time::Duration::ZERO
        {
            return Err(ConfigError(
                "jobs.order_retention and alerts.backoff must not be negative".into(),
            ));
        }
        if self.alerts.attempts == 0 {
            return Err(ConfigError("alerts.attempts must be at least 1".into()));
        }
        if let Some(url) = &self.alerts.webhook_url {
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| ConfigError(format!("alerts.webhook_url {url:?}: {e}")))?;
            if !matches!(parsed.scheme(), "https" | "http") {
                return Err(ConfigError(format!(
                    "alerts.webhook_url {url:?} must be an http:// or https:// URL"
                )));
            }
        }
        if self.validation.max_concurrent == 0 {
            return Err(ConfigError(
                "validation.max_concurrent must be at least 1".into(),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError(
                "database.max_connections must be at least 1".into(),
            ));
        }
        if self.testing.nonce_reject_percent > 100 {
            return Err(ConfigError(
                "testing.nonce_reject_percent must be between 0 and 100".into(),
            ));
        }
        if self.acme.orders_page_size == 0 {
            return Err(ConfigError(
                "acme.orders_page_size must be at least 1".into(),
            ));
        }
        if let Some(url) = &self.server.external_url {
            match url::Url::parse(url) {
                Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {}
                _ => {
                    return Err(ConfigError(format!(
                        "server.external_url must be an http(s) URL, got {url:?}"
                    )));
                }
            }
        }
        for name in &self.server.hostnames {
            let ok = name.parse::<std::net::IpAddr>().is_ok()
                || crate::acme::Identifier::parse("dns", name).is_ok();
            if !ok {
                return Err(ConfigError(format!(
                    "server.hostnames: {name:?} is neither a DNS name nor an IP address"
                )));
            }
        }
        // A CRL must be replaced before its nextUpdate, or relying parties treat it as stale.
        self.renewal.check("renewal").map_err(ConfigError)?;
        for identity in &self.acme.caa_identities {
            // RFC 8659 §4.2: an issuer-domain-name, compared with the records' values.
            if crate::validation::caa::parse_issue_value(identity.as_bytes())
                .ok()
                .and_then(|value| value.issuer)
                .is_none_or(|issuer| issuer != *identity)
            {
                return Err(ConfigError(format!(
                    "acme.caa_identities: {identity:?} is not a domain name"
                )));
            }
        }
        if self.crl.regenerate_every.0 >= self.crl.next_update.0 {
            return Err(ConfigError(
                "crl.regenerate_every must be shorter than crl.next_update".into(),
            ));
        }
        if let Some(url) = &self.crl.url {
            // RFC 5280 §4.2.1.13: CRL distribution points are HTTP (or LDAP) URIs, not HTTPS.
            match url::Url::parse(url) {
                Ok(u) if u.scheme() == "http" => {}
                _ => {
                    return Err(ConfigError(format!(
                        "crl.url must be an http:// URL, got {url:?}"
                    )));
                }
            }
        }
        if let Some(url) = &self.database.url {
            let known = ["sqlite:", "postgres://", "postgresql://"];
            if !known.iter().any(|p| url.starts_with(p)) {
                return Err(ConfigError(format!(
                    "database.url must start with sqlite:, postgres:// or postgresql://, got {}",
                    redact_url(url)
                )));
            }
        }
        Ok(())
    }

    /// The base of every URL Mayfly hands out, without a trailing slash.
    pub fn base_url(&self) -> String {
        match &self.server.external_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("https://{}", self.server.listen),
        }
    }

    /// The database URL, defaulting to a SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.server.data_dir.join("mayfly.db").display()
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

/// `profiles.builtin` as the file, the environment and the flags set it; true when unset.
fn builtin_profiles(layers: &Figment) -> Result<bool, ConfigError> {
    if !layers.contains("profiles.builtin") {
        return Ok(true);
    }
    layers
        .extract_inner::<bool>("profiles.builtin")
        .map_err(|e| ConfigError(describe(e)))
}

/// figment's message names the key (`for key "default.server.listen"`); drop the profile
/// name so the key reads as it is written in TOML.
fn describe(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let mut text = e.kind.to_string();
            if !key.is_empty() {
                text = format!("{key}: {text}");
            }
            if let Some(source) = &e.metadata.as_ref().and_then(|m| m.source.as_ref()) {
                text = format!("{text} (from {source})");
            }
            text
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A duration written as `90s`, `90m`, `16h`, `7d`, or a sum such as `1h30m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(pub time::Duration);

impl HumanDuration {
    pub const fn seconds(n: i64) -> Self {
        HumanDuration(time::Duration::seconds(n))
    }
    pub const fn minutes(n: i64) -> Self {
        HumanDuration(time::Duration::minutes(n))
    }
    pub const fn hours(n: i64) -> Self {
        HumanDuration(time::Duration::hours(n))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty duration".into());
        }
        let mut total = time::Duration::ZERO;
        let mut number = String::new();
        for c in text.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let n: i64 = number
                .parse()
                .map_err(|_| format!("{text:?}: expected a number before {c:?}"))?;
            number.clear();
            let unit = match c {
                's' => time::Duration::SECOND,
                'm' => time::Duration::MINUTE,
                'h' => time::Duration::HOUR,
                'd' => time::Duration::DAY,
                _ => return Err(format!("{text:?}: unknown unit {c:?} (use s, m, h or d)")),
            };
            total = n
                .checked_mul(unit.whole_seconds())
                .and_then(|secs| total.checked_add(time::Duration::seconds(secs)))
                .ok_or_else(|| format!("{text:?} is too long"))?;
        }
        if !number.is_empty() {
            return Err(format!("{text:?}: a number needs a unit (s, m, h or d)"));
        }
        Ok(HumanDuration(total))
    }

    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.0.whole_seconds().max(0) as u64)
    }
}

impl std::fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.0.whole_seconds();
        match secs {
            s if s % 86_400 == 0 && s != 0 => write!(f, "{}d", s / 86_400),
            s if s % 3_600 == 0 && s != 0 => write!(f, "{}h", s / 3_600),
            s if s % 60 == 0 && s != 0 => write!(f, "{}m", s / 60),
            s => write!(f, "{s}s"),
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        HumanDuration::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        let cases = [
            ("90s", 90),
            ("90m", 5400),
            ("16h", 57_600),
            ("7d", 604_800),
            ("1h30m", 5400),
        ];
        for (text, secs) in cases {
            assert_eq!(
                HumanDuration::parse(text),
                Ok(HumanDuration::seconds(secs)),
                "{text}"
            );
        }
        for bad in ["", "10", "h", "5w", "1.5h", "-1h"] {
            assert!(HumanDuration::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(HumanDuration::hours(160).to_string(), "160h");
    }

    fn load_toml(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mayfly.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(Some(&path), Figment::new())
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = load_toml("").unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:14000");
        assert_eq!(c.server.data_dir, PathBuf::from("./mayfly-data"));
        assert_eq!(c.validation.http01_port, 80);
        assert_eq!(c.validation.tls_alpn01_port, 443);
        assert_eq!(c.base_url(), "https://127.0.0.1:14000");
        assert_eq!(c.crl.listen.to_string(), "127.0.0.1:14080");
        assert_eq!(c.crl.url, None);
        assert_eq!(c.crl.next_update, HumanDuration::hours(24));
        assert_eq!(c.crl.regenerate_every, HumanDuration::hours(1));
        assert!(c.metrics.enabled);
        assert_eq!(c.log.format, LogFormat::Text);
        assert!(
            c.database_url()
                .starts_with("sqlite://./mayfly-data/mayfly.db")
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let e = load_toml("[server]\nlisten_addr = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(e.0.contains("listen_addr"), "{e}");
        let e = load_toml("[sever]\n").unwrap_err();
        assert!(e.0.contains("sever"), "{e}");
    }

    #[test]
    fn bad_value_is_named() {
        let e = load_toml("[validation]\nhttp01_port = \"eighty\"\n").unwrap_err();
        assert!(e.0.contains("validation.http01_port"), "{e}");
        let e = load_toml("[acme.claims]\nmax_cert_duration = \"3w\"\n").unwrap_err();
        assert!(e.0.contains("acme.claims.max_cert_duration"), "{e}");
        let e = load_toml("[database]\nurl = \"mysql://x\"\n").unwrap_err();
        assert!(e.0.contains("database.url"), "{e}");
        let e = load_toml("[crl]\nurl = \"https://crl.example/x.crl\"\n").unwrap_err();
        assert!(e.0.contains("crl.url"), "{e}");
        let e = load_toml("[log]\nformat = \"xml\"\n").unwrap_err();
        assert!(e.0.contains("log.format"), "{e}");
        let e = load_toml("[crl]\nregenerate_every = \"1d\"\n").unwrap_err();
        assert!(e.0.contains("crl.regenerate_every"), "{e}");
    }

    /// The keys that profiles and claims replaced are unknown now, and say so.
    #[test]
    fn replaced_lifetime_keys_are_refused() {
        for key in [
            "certificate_lifetime",
            "backdate",
            "order_lifetime",
            "authorization_lifetime",
            "max_names",
        ] {
            let e = load_toml(&format!("[acme]\n{key} = \"1h\"\n")).unwrap_err();
            assert!(e.0.contains(key), "{key}: {e}");
        }
    }

    #[test]
    fn claims_and_profiles_are_checked_at_start_up_naming_the_key() {
        let cases = [
            (
                "minimum above maximum",
                "[acme.claims]\nmin_cert_duration = \"8d\"\ndefault_cert_duration = \"8d\"\n",
                "acme.claims.min_cert_duration (8d) is longer than acme.claims.max_cert_duration (7d)",
            ),
            (
                "default below the minimum",
                "[acme.claims]\nmin_cert_duration = \"2d\"\n",
                "acme.claims.default_cert_duration (1d) is shorter than acme.claims.min_cert_duration (2d)",
            ),
            (
                "default above the maximum",
                "[acme.claims]\nmax_cert_duration = \"12h\"\n",
                "acme.claims.default_cert_duration (1d) is longer than acme.claims.max_cert_duration (12h)",
            ),
            (
                "a zero duration",
                "[acme.claims]\nmin_cert_duration = \"0s\"\n",
                "acme.claims.min_cert_duration must be longer than zero",
            ),
            (
                "a backdate as long as the shortest certificate",
                "[acme.claims]\nbackdate = \"5m\"\n",
                "acme.claims.backdate (5m) must be shorter than acme.claims.min_cert_duration (5m)",
            ),
            (
                "a built-in profile made longer than its own maximum",
                "[profiles.hours]\nvalidity = \"200h\"\n",
                "profiles.hours.validity (200h) is longer than the maximum certificate duration (24h)",
            ),
            (
                "claims that no longer fit a built-in profile",
                "[acme.claims]\nmax_cert_duration = \"2d\"\n",
                "profiles.shortlived.validity (160h) is longer than the maximum certificate duration (48h)",
            ),
            (
                "a new profile shorter than the claims allow",
                "[profiles.tiny]\ndescription = \"x\"\nvalidity = \"1m\"\n",
                "profiles.tiny.validity (1m) is shorter than the minimum certificate duration (5m)",
            ),
            (
                "an unknown default",
                "[profiles]\ndefault = \"daily\"\n",
                "profiles.default (\"daily\") names no profile; the profiles are hours, shortlived, tlsclient",
            ),
            (
                "no profiles at all",
                "[profiles]\nbuiltin = false\n",
                "profiles: at least one profile must be configured (profiles.builtin = false leaves only the [profiles.<name>] tables of the configuration)",
            ),
        ];
        for (case, text, message) in cases {
            let e = load_toml(text).unwrap_err();
            assert_eq!(e.0, message, "{case}");
        }
        let e = load_toml("[profiles.tiny]\nvalidity = \"1h\"\n").unwrap_err();
        assert!(
            e.0.contains("profiles.tiny") && e.0.contains("description"),
            "{e}"
        );
        let e = load_toml("[profiles]\nbuiltin = \"no\"\n").unwrap_err();
        assert!(e.0.contains("profiles.builtin"), "{e}");
    }

    #[test]
    fn profile_tables_add_to_and_change_the_builtin_ones() {
        let c = load_toml(
            "[profiles]\ndefault = \"web\"\n[profiles.web]\ndescription = \"web\"\n\
             [profiles.hours]\nvalidity = \"12h\"\n",
        )
        .unwrap();
        let names: Vec<&str> = c.profiles.profiles.keys().map(String::as_str).collect();
        assert_eq!(names, ["hours", "shortlived", "tlsclient", "web"]);
        assert_eq!(c.profiles.default, "web");
        let hours = &c.profiles.profiles["hours"];
        assert_eq!(hours.validity, Some(HumanDuration::hours(12)));
        assert_eq!(
            hours.description,
            Profiles::builtin().profiles["hours"].description
        );
    }

    #[test]
    fn builtin_false_keeps_only_the_configured_profiles() {
        let c = load_toml(
            "[profiles]\nbuiltin = false\ndefault = \"web\"\n\
             [profiles.web]\ndescription = \"web\"\nvalidity = \"6h\"\n",
        )
        .unwrap();
        let names: Vec<&str> = c.profiles.profiles.keys().map(String::as_str).collect();
        assert_eq!(names, ["web"]);
        assert!(!c.profiles.builtin);
        // The default profile is still "hours", which is gone: the error names the key.
        let e = load_toml("[profiles]\nbuiltin = false\n[profiles.web]\ndescription = \"w\"\n")
            .unwrap_err();
        assert!(
            e.0.starts_with("profiles.default (\"hours\") names no profile"),
            "{e}"
        );
    }

    #[test]
    fn flags_choose_the_default_profile() {
        let flags = Figment::from(Serialized::default("profiles.default", "shortlived"));
        let c = Config::load(None, flags).unwrap();
        assert_eq!(c.profiles.default, "shortlived");
        assert_eq!(c.profiles.profiles.len(), 3);
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mayfly.toml");
        std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:1000\"\n").unwrap();
        let flags = Figment::from(Serialized::default("server.listen", "127.0.0.1:2000"));
        let c = Config::load(Some(&path), flags).unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:2000");
    }

    #[test]
    fn missing_file_is_an_error() {
        let e =
            Config::load(Some(Path::new("/nonexistent/mayfly.toml")), Figment::new()).unwrap_err();
        assert!(e.0.contains("does not exist"), "{e}");
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../config/mayfly.example.toml");

    /// The shipped example documents the defaults: loading it changes nothing.
    #[test]
    fn example_file_equals_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mayfly.toml");
        std::fs::write(&path, EXAMPLE).unwrap();
        let loaded = Config::load(Some(&path), Figment::new()).unwrap();
        let loaded = serde_json::to_value(&loaded).unwrap();
        let defaults = serde_json::to_value(Config::default()).unwrap();
        assert_eq!(loaded, defaults);
    }

    /// Every option appears in the example, set or commented out; a table within a section
    /// (`[acme.claims]`, `[profiles.hours]`) appears with every key of its own.
    #[test]
    fn example_file_mentions_every_key() {
        fn documented(table: &str, keys: &serde_json::Value) {
            assert!(EXAMPLE.contains(&format!("[{table}]")), "[{table}] missing");
            for (key, value) in keys.as_object().unwrap() {
                if value.is_object() {
                    documented(&format!("{table}.{key}"), value);
                    continue;
                }
                let set = format!("\n{key} = ");
                let commented = format!("\n# {key} = ");
                assert!(
                    EXAMPLE.contains(&set) || EXAMPLE.contains(&commented),
                    "{table}.{key} is not documented in config/mayfly.example.toml"
                );
            }
        }
        let defaults = serde_json::to_value(Config::default()).unwrap();
        for (section, keys) in defaults.as_object().unwrap() {
            documented(section, keys);
        }
    }

    /// The commented example validator chain loads once uncommented: a chain that stops
    /// start-up never reaches the example.
    #[test]
    fn example_chain_loads() {
        let start = EXAMPLE.find("# --- example chain ---").unwrap();
        let end = EXAMPLE.find("# --- end of example chain ---").unwrap();
        let chain: String = EXAMPLE[start..end]
            .lines()
            .skip(1)
            .map(|line| {
                line.strip_prefix("# ")
                    .unwrap_or(line.trim_start_matches('#'))
            })
            .collect::<Vec<_>>()
            .join("\n");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.toml");
        std::fs::write(&path, chain).unwrap();
        let loaded = Config::load(Some(&path), Figment::new()).unwrap();
        assert_eq!(loaded.acme.validators.0.len(), 11);
        assert_eq!(loaded.acme.fixups.0.len(), 3);
    }
}
