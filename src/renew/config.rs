//! The agent's own TOML file: the ACME server, the account, and the certificates it keeps
//! fresh. Unknown keys are refused, so a typo is an error rather than a silently ignored
//! setting. `config/renew.example.toml` documents every key.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Toml};
use serde::Deserialize;

use crate::config::{ConfigError, HumanDuration};

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub server: ServerConfig,
    pub account: AccountConfig,
    #[serde(default)]
    pub daemon: DaemonConfig,
    #[serde(default, rename = "certificate")]
    pub certificates: Vec<CertificateConfig>,
}

/// Where the ACME server is and how to reach it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The ACME directory URL.
    pub directory: String,
    /// PEM file with the roots to trust for the server's HTTPS certificate (every certificate
    /// in it is trusted). Without it, the platform's verifier decides.
    #[serde(default)]
    pub ca_bundle: Option<PathBuf>,
    /// `mailto:` contacts sent with newAccount.
    #[serde(default)]
    pub contact: Vec<String>,
    /// External Account Binding (RFC 8555 §7.3.4), used once, when the account is created.
    #[serde(default)]
    pub eab: Option<EabConfig>,
}

/// An External Account Binding key, as `mayfly admin eab add` prints it.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EabConfig {
    pub kid: String,
    /// The HMAC key, base64url (padding optional).
    pub hmac_key: String,
}

impl std::fmt::Debug for EabConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EabConfig")
            .field("kid", &self.kid)
            .field("hmac_key", &"<redacted>")
            .finish()
    }
}

/// Where the account key and the agent's state live.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// The account's credentials (JSON, mode 0600); created on the first run, then reused.
    pub file: PathBuf,
    /// The agent's state (JSON, mode 0600); default `renew-state.json` beside `file`.
    #[serde(default)]
    pub state_file: Option<PathBuf>,
}

impl AccountConfig {
    pub fn state_path(&self) -> PathBuf {
        match &self.state_file {
            Some(path) => path.clone(),
            None => self
                .file
                .parent()
                .unwrap_or(Path::new("."))
                .join("renew-state.json"),
        }
    }
}

/// Timing of `--daemon`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    /// The longest the daemon sleeps between two looks at its certificates, whatever the
    /// schedule says, so a deleted or replaced file is noticed.
    pub max_sleep: HumanDuration,
    /// First delay after a failed renewal; doubled after each further failure.
    pub retry_initial: HumanDuration,
    /// The bound on that delay.
    pub retry_max: HumanDuration,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            max_sleep: HumanDuration::hours(1),
            retry_initial: HumanDuration::minutes(1),
            retry_max: HumanDuration::hours(1),
        }
    }
}

/// One managed certificate.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateConfig {
    /// A label, unique in the file: used in logs, the state file and `--status`. Default: the
    /// first name.
    #[serde(default)]
    pub id: Option<String>,
    /// DNS names and IP addresses; the first DNS name becomes nothing special (no CN is set).
    pub names: Vec<String>,
    #[serde(default)]
    pub key_type: KeyType,
    /// Keep the existing key on renewal (`true`) or make a new one each time (`false`).
    #[serde(default)]
    pub reuse_key: bool,
    /// ACME profile (draft-ietf-acme-profiles); sent only if the server lists it.
    #[serde(default)]
    pub profile: Option<String>,
    /// The leaf alone.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// The intermediates alone.
    #[serde(default)]
    pub chain: Option<PathBuf>,
    /// The leaf followed by the intermediates.
    #[serde(default)]
    pub fullchain: Option<PathBuf>,
    /// The private key (PKCS#8 PEM, mode 0600).
    pub key: PathBuf,
    pub challenge: ChallengeConfig,
    #[serde(default)]
    pub hooks: HooksConfig,
}

impl CertificateConfig {
    /// The label.
    pub fn id(&self) -> &str {
        self.id
            .as_deref()
            .or(self.names.first().map(String::as_str))
            .unwrap_or("")
    }

    /// The file the agent reads back to learn what is installed: the leaf or the full chain.
    pub fn leaf_source(&self) -> &Path {
        match (&self.cert, &self.fullchain) {
            (Some(cert), _) => cert,
            (None, Some(fullchain)) => fullchain,
            // `check` refuses a certificate with neither.
            (None, None) => &self.key,
        }
    }

    /// The configured names, normalised (lower case, IPs in canonical form).
    pub fn name_set(&self) -> BTreeSet<String> {
        self.names.iter().map(|name| normalise(name)).collect()
    }
}

/// A name as it is compared with a certificate's SANs.
pub fn normalise(name: &str) -> String {
    match name.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => name.trim_end_matches('.').to_ascii_lowercase(),
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    #[default]
    P256,
    P384,
    Rsa2048,
    Rsa3072,
    Rsa4096,
    Ed25519,
}

/// How the agent proves control of the names.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum ChallengeConfig {
    /// http-01 answered by a listener the agent runs for the length of the order.
    #[serde(rename = "http-01")]
    Http01Standalone {
        /// Where to listen; the server connects to port 80 of each name.
        #[serde(default = "default_http01_listen")]
        listen: SocketAddr,
    },
    /// http-01 answered by an existing web server: token files under
    /// `<webroot>/.well-known/acme-challenge/`.
    #[serde(rename = "http-01-webroot")]
    Http01Webroot { webroot: PathBuf },
    /// dns-01 through a command called as `COMMAND present|cleanup <fqdn.> <value>` (the
    /// calling convention of lego's `exec` provider).
    #[serde(rename = "dns-01")]
    Dns01Hook {
        command: PathBuf,
        /// How long to wait after `present` before asking the server to validate.
        #[serde(default = "zero")]
        propagation_delay: HumanDuration,
    },
    /// tkauth-01 (in the shape of RFC 9447, `tkauth-type` `atc`): a token from the operator's
    /// command stands in for a network challenge. The command runs with `/bin/sh -c`, gets
    /// `MAYFLY_IDENTIFIER`, `MAYFLY_ACCOUNT_THUMBPRINT` and `MAYFLY_DIRECTORY`, and prints
    /// the token on stdout.
    #[serde(rename = "tkauth-01")]
    TkAuth01 { token_command: String },
}

impl ChallengeConfig {
    /// Whether this method can prove control of `name`: RFC 8738 §7 rules out dns-01 for IP
    /// addresses, RFC 8555 §7.1.3 allows wildcards only through dns-01; a token (tkauth-01)
    /// may authorize either.
    fn validates(&self, name: &str) -> Result<(), &'static str> {
        let is_ip = name.parse::<IpAddr>().is_ok();
        match self {
            ChallengeConfig::Dns01Hook { .. } if is_ip => Err(
                "is an IP address, which dns-01 cannot validate (RFC 8738 §7); use http-01 or \
                 tkauth-01",
            ),
            ChallengeConfig::Http01Standalone { .. } | ChallengeConfig::Http01Webroot { .. }
                if name.starts_with("*.") =>
            {
                Err("is a wildcard, which needs dns-01 or tkauth-01 (RFC 8555 §7.1.3)")
            }
            _ => Ok(()),
        }
    }
}

fn default_http01_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 80))
}

fn zero() -> HumanDuration {
    HumanDuration::seconds(0)
}

/// Commands run after a renewal.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HooksConfig {
    /// Run with `/bin/sh -c` after the new files are in place, e.g. `systemctl reload nginx`.
    pub post_renew: Option<String>,
    /// Bound on the hook (default 5 minutes); it is killed after that and counts as failed.
    pub timeout: Option<HumanDuration>,
}

impl AgentConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("reading {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|ConfigError(e)| ConfigError(format!("{}: {e}", path.display())))
    }

    /// Parses and checks TOML text.
    pub fn parse(text: &str) -> Result<AgentConfig, ConfigError> {
        let config: AgentConfig = Figment::from(Toml::string(text))
            .extract()
            .map_err(|e| ConfigError(describe(e)))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let error = |message: String| Err(ConfigError(message));
        if !self.server.directory.starts_with("https://") {
            return error("server.directory must be an https:// URL".into());
        }
        let mut ids = BTreeSet::new();
        for certificate in &self.certificates {
            let id = certificate.id().to_owned();
            if certificate.names.is_empty() {
                return error(format!("certificate {id:?}: names must not be empty"));
            }
            if !ids.insert(id.clone()) {
                return error(format!("certificate {id:?} appears twice; give each an id"));
            }
            if certificate.cert.is_none() && certificate.fullchain.is_none() {
                return error(format!(
                    "certificate {id:?}: set cert or fullchain (or both)"
                ));
            }
            for name in &certificate.names {
                if name.is_empty() || name.contains(char::is_whitespace) {
                    return error(format!("certificate {id:?}: bad name {name:?}"));
                }
                if let Err(reason) = certificate.challenge.validates(name) {
                    return error(format!("certificate {id:?}: {name} {reason}"));
                }
            }
            if let ChallengeConfig::TkAuth01 { token_command } = &certificate.challenge
                && token_command.trim().is_empty()
            {
                return error(format!(
                    "certificate {id:?}: challenge.token_command must not be empty"
                ));
            }
            let paths = [
                certificate.cert.as_ref(),
                certificate.chain.as_ref(),
                certificate.fullchain.as_ref(),
                Some(&certificate.key),
            ];
            let distinct: BTreeSet<_> = paths.iter().flatten().collect();
            if distinct.len() != paths.iter().flatten().count() {
                return error(format!(
                    "certificate {id:?}: cert, chain, fullchain and key must be different files"
                ));
            }
        }
        Ok(())
    }
}

/// Each of figment's errors with the key it concerns, as written in TOML.
fn describe(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            if key.is_empty() {
                e.kind.to_string()
            } else {
                format!("{key}: {}", e.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[server]
directory = "https://127.0.0.1:14000/directory"

[account]
file = "/var/lib/mayfly-renew/account.json"

[[certificate]]
names = ["www.example.test", "192.0.2.1"]
fullchain = "/etc/ssl/www/fullchain.pem"
key = "/etc/ssl/www/key.pem"
challenge = { type = "http-01", listen = "127.0.0.1:5002" }
"#;

    #[test]
    fn minimal_file_gets_defaults() {
        let config = AgentConfig::parse(MINIMAL).unwrap();
        assert_eq!(
            config.account.state_path(),
            PathBuf::from("/var/lib/mayfly-renew/renew-state.json")
        );
        let certificate = &config.certificates[0];
        assert_eq!(certificate.id(), "www.example.test");
        assert_eq!(certificate.key_type, KeyType::P256);
        assert!(!certificate.reuse_key);
        assert!(matches!(
            certificate.challenge,
            ChallengeConfig::Http01Standalone { listen } if listen.port() == 5002
        ));
        assert_eq!(config.daemon.retry_max, HumanDuration::hours(1));
    }

    #[test]
    fn the_example_file_parses() {
        let text = include_str!("../../config/renew.example.toml");
        let config = AgentConfig::parse(text).unwrap();
        assert!(config.certificates.len() >= 3);
    }

    #[test]
    fn refusals() {
        let cases: [(&str, String, &str); 11] = [
            (
                "unknown key",
                MINIMAL.replace("key_type", "x").replace(
                    "key = \"/etc/ssl/www/key.pem\"",
                    "key = \"/k\"\nkey_typo = \"p256\"",
                ),
                "key_typo",
            ),
            (
                "plain http directory",
                MINIMAL.replace("https://127", "http://127"),
                "https://",
            ),
            (
                "no output for the certificate",
                MINIMAL.replace("fullchain = \"/etc/ssl/www/fullchain.pem\"", ""),
                "cert or fullchain",
            ),
            (
                "same file twice",
                MINIMAL.replace("/etc/ssl/www/key.pem", "/etc/ssl/www/fullchain.pem"),
                "different files",
            ),
            (
                "empty names",
                MINIMAL.replace("[\"www.example.test\", \"192.0.2.1\"]", "[]"),
                "names must not be empty",
            ),
            (
                "IP with dns-01",
                MINIMAL.replace(
                    "{ type = \"http-01\", listen = \"127.0.0.1:5002\" }",
                    "{ type = \"dns-01\", command = \"/bin/true\" }",
                ),
                "IP address",
            ),
            (
                "tkauth-01 without token_command",
                MINIMAL.replace(
                    "{ type = \"http-01\", listen = \"127.0.0.1:5002\" }",
                    "{ type = \"tkauth-01\" }",
                ),
                "token_command",
            ),
            (
                "tkauth-01 with an empty token_command",
                MINIMAL.replace(
                    "{ type = \"http-01\", listen = \"127.0.0.1:5002\" }",
                    "{ type = \"tkauth-01\", token_command = \" \" }",
                ),
                "token_command must not be empty",
            ),
            (
                "token_command with http-01",
                MINIMAL.replace(
                    "listen = \"127.0.0.1:5002\" }",
                    "listen = \"127.0.0.1:5002\", token_command = \"mayfly token\" }",
                ),
                "token_command",
            ),
            (
                "wildcard with http-01",
                MINIMAL.replace("192.0.2.1", "*.example.test"),
                "needs dns-01 or tkauth-01",
            ),
            (
                "unknown key type",
                MINIMAL.replace("key = \"/etc", "key_type = \"dsa\"\nkey = \"/etc"),
                "dsa",
            ),
        ];
        for (case, text, expected) in cases {
            let error = AgentConfig::parse(&text).expect_err(case);
            assert!(error.0.contains(expected), "{case}: {error}");
        }
    }

    #[test]
    fn tkauth_takes_a_token_command_and_any_identifier() {
        let text = MINIMAL
            .replace("192.0.2.1", "*.apps.example.test\", \"192.0.2.1")
            .replace(
                "{ type = \"http-01\", listen = \"127.0.0.1:5002\" }",
                "{ type = \"tkauth-01\", token_command = \"mayfly token --san \\\"$MAYFLY_IDENTIFIER\\\"\" }",
            );
        let config = AgentConfig::parse(&text).unwrap();
        assert!(matches!(
            &config.certificates[0].challenge,
            ChallengeConfig::TkAuth01 { token_command }
                if token_command == "mayfly token --san \"$MAYFLY_IDENTIFIER\""
        ));
    }

    #[test]
    fn eab_key_is_redacted_in_debug() {
        let eab = EabConfig {
            kid: "kid-1".into(),
            hmac_key: "secret".into(),
        };
        assert!(!format!("{eab:?}").contains("secret"));
    }

    #[test]
    fn names_compare_normalised() {
        assert_eq!(normalise("WWW.Example.test."), "www.example.test");
        assert_eq!(normalise("2001:DB8::0:1"), "2001:db8::1");
    }
}
