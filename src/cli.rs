//! The command line (clap). Flags override the configuration file and the environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use figment::Figment;
use figment::providers::Serialized;

use crate::config::{Config, ConfigError, HumanDuration};
use crate::issuer::KeyType;

/// The environment variable that, when set, encrypts the CA keys at rest.
pub const PASSPHRASE_ENV: &str = "MAYFLY_CA_PASSPHRASE";

#[derive(Debug, Parser)]
#[command(
    name = "mayfly",
    version,
    about = "An ACME certificate authority for short-lived certificates"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the ACME server (creates the data directory and CA on first start).
    Serve(ServeArgs),
    /// Create the data directory, the CA and the server certificate, then exit.
    Init(InitArgs),
    /// Ask a running server whether it is ready (GET /ready, trusting the data directory's
    /// root); exit 0 if it is, 1 if not. For container health checks.
    Healthcheck(HealthcheckArgs),
    /// Check a configuration file and explain what is wrong with it.
    CheckConfig {
        /// The TOML file to check.
        file: PathBuf,
    },
    /// Operator tasks on the database (External Account Binding keys).
    #[command(
        long_about = "Operator tasks on the database (External Account Binding keys).\n\n\
            There is no admin API yet: these commands open the database directly, configured \
            as for `serve` (--config, MAYFLY__* environment variables, --data-dir, \
            --database-url). They are safe to run while `serve` runs."
    )]
    Admin(AdminArgs),
    /// Keep certificates fresh: the renewal agent (ACME client), from cron or as a daemon.
    #[command(long_about = RENEW_ABOUT)]
    Renew(RenewArgs),
    /// Provisioner keys: `jwk-create` makes a JWK provisioner's key pair.
    #[command(subcommand)]
    Provisioner(ProvisionerCommand),
    /// Mint a one-time token (a JWT) for a JWK provisioner; prints it on stdout.
    #[command(long_about = TOKEN_ABOUT)]
    Token(TokenArgs),
}

/// `mayfly healthcheck`: the server's address, data directory and base URL as `serve` reads
/// them.
#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// TOML configuration file.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (server.data_dir), for root-ca.pem.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Liveness only (GET /health) instead of readiness (GET /ready).
    #[arg(long)]
    pub live: bool,
}

impl HealthcheckArgs {
    pub fn config(&self) -> Result<Config, ConfigError> {
        let flags = flag(Figment::new(), "server.data_dir", self.data_dir.clone());
        Config::load(self.config.as_deref(), flags)
    }
}

// --- `mayfly provisioner` and `mayfly token` (issue 6: JWK provisioners) ---

#[derive(Debug, Subcommand)]
pub enum ProvisionerCommand {
    /// Generate a JWK provisioner key: writes the public JWK and the private JWK encrypted
    /// with a password (a PBES2 JWE, as step-ca stores it), and prints the configuration.
    JwkCreate(JwkCreateArgs),
}

#[derive(Debug, Args)]
pub struct JwkCreateArgs {
    /// The provisioner's name (the [provisioners.<name>] table, and the tokens' iss).
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// The key type.
    #[arg(long, value_enum, default_value = "p256")]
    pub key_type: JwkKeyType,
    /// Where to write the public JWK (for key_file).
    #[arg(long, value_name = "FILE")]
    pub public_out: PathBuf,
    /// Where to write the encrypted private key (for encrypted_key_file), mode 0600.
    #[arg(long, value_name = "FILE")]
    pub encrypted_out: PathBuf,
    /// A file holding the password that encrypts the private key (trailing whitespace is
    /// ignored, as step does).
    #[arg(long, value_name = "FILE")]
    pub password_file: PathBuf,
    /// Overwrite the output files if they exist.
    #[arg(long)]
    pub force: bool,
}

/// The key types of a JWK provisioner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum JwkKeyType {
    /// ECDSA P-256 (ES256), as step-ca's default.
    #[value(name = "p256")]
    P256,
    /// ECDSA P-384 (ES384).
    #[value(name = "p384")]
    P384,
    /// Ed25519 (EdDSA).
    #[value(name = "ed25519")]
    Ed25519,
    /// RSA 2048 (RS256).
    #[value(name = "rsa2048")]
    Rsa2048,
}

const TOKEN_ABOUT: &str = "Mint a one-time token (a JWT) for a JWK provisioner; prints it on \
    stdout and nothing else.\n\n\
    Sign with the provisioner's encrypted key from the configuration (--password-file, with \
    --config as for `serve`), or with a private JWK file (--key). The token carries iss (the \
    provisioner), sub, sans, aud, iat, nbf, exp, a random jti, groups, and cnf.jkt when \
    --account-thumbprint binds it to an ACME account key.";

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("signing_key").required(true).args(["key", "password_file"]))]
pub struct TokenArgs {
    /// The JWK provisioner's name (the token's iss).
    #[arg(long, value_name = "NAME")]
    pub provisioner: String,
    /// A name the token allows (repeat for more).
    #[arg(long = "san", value_name = "NAME", required = true)]
    pub sans: Vec<String>,
    /// The token's sub; default: the first --san.
    #[arg(long, value_name = "SUBJECT")]
    pub subject: Option<String>,
    /// The token's aud; default: <--ca-url or the configured base URL>/v1/sign.
    #[arg(long, value_name = "URL")]
    pub audience: Option<String>,
    /// The CA's base URL, for the default audience.
    #[arg(long, value_name = "URL")]
    pub ca_url: Option<String>,
    /// How long the token lives (exp - nbf); the provisioner's max_token_lifetime caps it.
    #[arg(long, value_name = "DURATION", value_parser = HumanDuration::parse, default_value = "5m")]
    pub lifetime: HumanDuration,
    /// Bind the token to this ACME account key (RFC 7638 thumbprint), as cnf.jkt.
    #[arg(long, value_name = "THUMBPRINT")]
    pub account_thumbprint: Option<String>,
    /// A group for the server_group validator (repeat for more).
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// A private JWK file to sign with (its kid, or its thumbprint, names it).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Decrypt the provisioner's encrypted_key with the password in this file.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// TOML configuration file (as for `serve`).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
}

// --- end of `mayfly provisioner` and `mayfly token` ---

// --- `mayfly renew` (issue 8: the renewal agent) ---

const RENEW_ABOUT: &str = "Keep certificates fresh: the renewal agent (ACME client).\n\n\
    Reads its own TOML file (see config/renew.example.toml), not the server's. Renews each \
    certificate inside the server's ARI window when it offers renewal information, else at \
    2/3 of its lifetime, and at once when it is missing, expired or names other identifiers. \
    Exit codes of --once: 0 fine, 1 a renewal failed (installed files unchanged), 2 bad \
    configuration, 3 renewed but a post_renew hook failed.";

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("mode").required(true).args(["once", "daemon", "status"]))]
pub struct RenewArgs {
    /// The agent's TOML file.
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        default_value = "/etc/mayfly/renew.toml"
    )]
    pub config: PathBuf,
    /// Look at every certificate once, renew what is due, exit (for cron or a systemd timer).
    #[arg(long)]
    pub once: bool,
    /// Keep running: sleep until the next renewal is due; SIGHUP re-reads the file.
    #[arg(long)]
    pub daemon: bool,
    /// Print each certificate's expiry, next renewal and last result (no network).
    #[arg(long)]
    pub status: bool,
    /// With --once: print one line per certificate, also when nothing is due.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// With --once: renew even what is not due.
    #[arg(long, requires = "once")]
    pub force: bool,
    /// Only the certificate with this id.
    #[arg(long, value_name = "ID")]
    pub cert: Option<String>,
}

// --- end of `mayfly renew` ---

// --- `mayfly admin` (issue 3: accounts) ---

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    pub database: AdminDatabaseArgs,
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// Where the database is: the same layering as `serve`.
#[derive(Debug, Args)]
pub struct AdminDatabaseArgs {
    /// TOML configuration file.
    #[arg(long, short = 'c', value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory (server.data_dir); the default database is mayfly.db in it.
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Database URL (database.url).
    #[arg(long, value_name = "URL", global = true)]
    pub database_url: Option<String>,
}

impl AdminDatabaseArgs {
    pub fn config(&self) -> Result<Config, ConfigError> {
        let mut flags = Figment::new();
        flags = flag(flags, "server.data_dir", self.data_dir.clone());
        flags = flag(flags, "database.url", self.database_url.clone());
        Config::load(self.config.as_deref(), flags)
    }
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// External Account Binding keys (RFC 8555 §7.3.4).
    #[command(subcommand)]
    Eab(EabCommand),
    /// Renewal windows (ACME Renewal Information, RFC 9773), e.g. "renew now" for an incident.
    #[command(subcommand)]
    Ari(AriCommand),
}

#[derive(Debug, Subcommand)]
pub enum EabCommand {
    /// Create a key; prints its kid and its HMAC key (base64url), which is shown only once.
    Add {
        /// A note for the operator (later policy may read it).
        #[arg(long, default_value = "")]
        label: String,
        /// Let the key bind any number of accounts (default: one).
        #[arg(long)]
        reusable: bool,
        /// The provisioner whose policy (claims, profiles, validators, fixups) accounts bound
        /// with this key get; default: the directory's own.
        #[arg(long, value_name = "NAME")]
        provisioner: Option<String>,
        /// Print {"kid", "hmac_key", "label", "reusable", "provisioner"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the keys (never their HMAC keys).
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Stop a key from binding new accounts; accounts it bound keep working.
    Revoke {
        /// The key's id, as printed by `add`.
        kid: String,
    },
}

/// `mayfly admin ari`: the window renewalInfo suggests for one certificate. The certificate is
/// named by its serial number in hex (colons allowed) or by its ARI id
/// (`base64url(AKI).base64url(serial)`). The window is stored in the database, so every
/// replica answers it, and it survives restarts.
#[derive(Debug, Subcommand)]
pub enum AriCommand {
    /// Set the window to [--start, --end].
    Move {
        /// Serial number (hex) or ARI certificate id.
        // An ARI id is base64url and may start with '-'; it is a value, not a flag.
        #[arg(allow_hyphen_values = true)]
        certificate: String,
        /// RFC 3339 time, `now`, or `now+DURATION` (e.g. now+30m).
        #[arg(long, value_parser = WindowTime::parse)]
        start: WindowTime,
        /// RFC 3339 time, `now`, or `now+DURATION`; after --start.
        #[arg(long, value_parser = WindowTime::parse)]
        end: WindowTime,
    },
    /// Set the window to [now, now+5m]: clients renew at their next check.
    RenewNow {
        /// Serial number (hex) or ARI certificate id.
        // An ARI id is base64url and may start with '-'; it is a value, not a flag.
        #[arg(allow_hyphen_values = true)]
        certificate: String,
    },
    /// Forget a moved window: renewalInfo computes it from the lifetime again.
    Reset {
        /// Serial number (hex) or ARI certificate id.
        // An ARI id is base64url and may start with '-'; it is a value, not a flag.
        #[arg(allow_hyphen_values = true)]
        certificate: String,
    },
}

/// A window bound on the command line: a fixed time, or now plus an offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowTime {
    At(time::OffsetDateTime),
    FromNow(time::Duration),
}

impl WindowTime {
    pub fn parse(text: &str) -> Result<WindowTime, String> {
        let text = text.trim();
        if text == "now" {
            return Ok(WindowTime::FromNow(time::Duration::ZERO));
        }
        if let Some(offset) = text.strip_prefix("now+") {
            return HumanDuration::parse(offset).map(|d| WindowTime::FromNow(d.0));
        }
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .map(WindowTime::At)
            .map_err(|_| {
                format!(
                    "{text:?} is not an RFC 3339 time (2025-01-31T12:00:00Z), now or now+DURATION"
                )
            })
    }

    pub fn resolve(self, now: time::OffsetDateTime) -> time::OffsetDateTime {
        match self {
            WindowTime::At(t) => t,
            WindowTime::FromNow(d) => now + d,
        }
    }
}

// --- end of `mayfly admin` ---

#[derive(Debug, Args)]
pub struct CommonArgs {
    /// TOML configuration file.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (server.data_dir).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Listen address (server.listen).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Database URL (database.url).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Log format: text or json (log.format).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<crate::config::LogFormat>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Key type of the root and intermediate (ca.key_type).
    #[arg(long, value_enum)]
    pub key_type: Option<KeyType>,
    /// Common name of the root (ca.root_common_name).
    #[arg(long, value_name = "NAME")]
    pub root_cn: Option<String>,
    /// Common name of the intermediate (ca.intermediate_common_name).
    #[arg(long, value_name = "NAME")]
    pub intermediate_cn: Option<String>,
    /// Validity of the root, e.g. 87600h (ca.root_validity).
    #[arg(long, value_name = "DURATION", value_parser = HumanDuration::parse)]
    pub root_validity: Option<HumanDuration>,
    /// Validity of the intermediate, e.g. 43800h (ca.intermediate_validity).
    #[arg(long, value_name = "DURATION", value_parser = HumanDuration::parse)]
    pub intermediate_validity: Option<HumanDuration>,
}

/// Adds `value` at `key` to the flag layer when the flag was given.
fn flag<T: serde::Serialize>(figment: Figment, key: &str, value: Option<T>) -> Figment {
    match value {
        Some(v) => figment.merge(Serialized::default(key, v)),
        None => figment,
    }
}

impl ServeArgs {
    pub fn config(&self) -> Result<Config, ConfigError> {
        let mut flags = Figment::new();
        flags = flag(flags, "server.data_dir", self.common.data_dir.clone());
        flags = flag(flags, "server.listen", self.listen);
        flags = flag(flags, "database.url", self.database_url.clone());
        flags = flag(flags, "log.format", self.log_format);
        Config::load(self.common.config.as_deref(), flags)
    }
}

impl InitArgs {
    pub fn config(&self) -> Result<Config, ConfigError> {
        let mut flags = Figment::new();
        flags = flag(flags, "server.data_dir", self.common.data_dir.clone());
        flags = flag(flags, "ca.key_type", self.key_type);
        flags = flag(flags, "ca.root_common_name", self.root_cn.clone());
        flags = flag(
            flags,
            "ca.intermediate_common_name",
            self.intermediate_cn.clone(),
        );
        flags = flag(flags, "ca.root_validity", self.root_validity);
        flags = flag(
            flags,
            "ca.intermediate_validity",
            self.intermediate_validity,
        );
        Config::load(self.common.config.as_deref(), flags)
    }
}

/// Names a file holding the passphrase (a Docker secret, or a systemd credential:
/// `MAYFLY_CA_PASSPHRASE_FILE=%d/ca-passphrase`); `MAYFLY_CA_PASSPHRASE` wins when both are set.
pub const PASSPHRASE_FILE_ENV: &str = "MAYFLY_CA_PASSPHRASE_FILE";

/// The passphrase for the CA keys, if one is set (and not empty). A passphrase file that
/// cannot be read counts as none here; `main` calls [`try_passphrase`] first and stops.
pub fn passphrase() -> Option<String> {
    try_passphrase().ok().flatten()
}

/// [`passphrase`], with the error when `MAYFLY_CA_PASSPHRASE_FILE` names an unreadable file:
/// carrying on without it would create unencrypted keys, or fail later less clearly.
pub fn try_passphrase() -> anyhow::Result<Option<String>> {
    if let Some(p) = std::env::var(PASSPHRASE_ENV).ok().filter(|p| !p.is_empty()) {
        return Ok(Some(p));
    }
    let Some(file) = std::env::var_os(PASSPHRASE_FILE_ENV).filter(|f| !f.is_empty()) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&file).map_err(|e| {
        anyhow::anyhow!(
            "{PASSPHRASE_FILE_ENV}={}: cannot read the passphrase: {e}",
            std::path::Path::new(&file).display()
        )
    })?;
    // A trailing newline is the file's, not the passphrase's.
    let passphrase = text.trim_end_matches(['\n', '\r']).to_owned();
    if passphrase.is_empty() {
        anyhow::bail!(
            "{PASSPHRASE_FILE_ENV}={}: the file is empty",
            std::path::Path::new(&file).display()
        );
    }
    Ok(Some(passphrase))
}

#[cfg(test)]
mod ari_argument_tests {
    use clap::Parser;

    use super::Cli;

    /// base64url ARI ids may start with '-', as one in 64 do.
    #[test]
    fn an_ari_id_starting_with_a_hyphen_is_a_value() {
        for command in ["renew-now", "reset"] {
            let parsed = Cli::try_parse_from(["mayfly", "admin", "ari", command, "-0abc.AQ"]);
            assert!(parsed.is_ok(), "{command}: {:?}", parsed.err());
        }
    }
}
