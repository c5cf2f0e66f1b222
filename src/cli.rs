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
    /// Operator tasks over the admin API: status, certificates, revocation, accounts, EAB
    /// keys, the CA chain, the CRL, ARI windows; `bootstrap` makes the first admin certificate.
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

// --- `mayfly admin` (issue 3: accounts; issue 7: over the admin API) ---

const ADMIN_ABOUT: &str = "Operator tasks over the admin API (mutual TLS).\n\n\
    `mayfly admin bootstrap` makes the first admin client certificate from the CA key in the \
    data directory (the server need not run). Every other command calls the admin API of a \
    running server: by default at admin.listen of the configuration, with \
    <data_dir>/admin/admin.pem and admin-key.pem as the client certificate and the data \
    directory's root-ca.pem as the trusted root. Output is a table; --json prints the API's \
    JSON. Exit codes: 0 done, 1 the server refused or failed, 2 bad usage or configuration.";

#[derive(Debug, Args)]
#[command(long_about = ADMIN_ABOUT)]
pub struct AdminArgs {
    #[command(flatten)]
    pub database: AdminDatabaseArgs,
    #[command(flatten)]
    pub connection: AdminConnectionArgs,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// The configuration, as for `serve`: where the data directory and the admin listener are.
#[derive(Debug, Args)]
pub struct AdminDatabaseArgs {
    /// TOML configuration file.
    #[arg(long, short = 'c', value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory (server.data_dir): the CA for bootstrap, and the default client
    /// certificate and root.
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
}

impl AdminDatabaseArgs {
    pub fn config(&self) -> Result<Config, ConfigError> {
        let mut flags = Figment::new();
        flags = flag(flags, "server.data_dir", self.data_dir.clone());
        Config::load(self.config.as_deref(), flags)
    }
}

/// How to reach the admin API.
#[derive(Debug, Args)]
pub struct AdminConnectionArgs {
    /// The admin API's base URL; default https://<admin.listen>.
    #[arg(long, value_name = "URL", global = true)]
    pub url: Option<String>,
    /// The admin client certificate chain (PEM); default <data_dir>/admin/admin.pem.
    #[arg(long, value_name = "FILE", global = true)]
    pub cert: Option<PathBuf>,
    /// Its private key (PEM); default <data_dir>/admin/admin-key.pem.
    #[arg(long, value_name = "FILE", global = true)]
    pub key: Option<PathBuf>,
    /// The root that signed the admin listener's certificate; default <data_dir>/root-ca.pem.
    #[arg(long, value_name = "FILE", global = true)]
    pub ca: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Write the first admin client certificate and key (mode 0600) from the CA in the data
    /// directory; needs MAYFLY_CA_PASSPHRASE when the CA key is encrypted.
    Bootstrap {
        /// The certificate's common name (shown as the actor in the audit log).
        #[arg(long, default_value = "mayfly-admin")]
        name: String,
        /// How long it is valid.
        #[arg(long, value_name = "DURATION", value_parser = HumanDuration::parse, default_value = "90d")]
        validity: HumanDuration,
        /// Directory for admin.pem and admin-key.pem; default <data_dir>/admin.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
    /// The CA's fingerprints and expiries, and the certificate and account counts.
    Status,
    /// Print the admin API's OpenAPI document (no server needed), e.g. to refresh
    /// docs/admin-openapi.json.
    Openapi,
    /// List certificates (oldest first), filtered; or export them all.
    Certs(CertsArgs),
    /// One certificate, by serial (hex, colons allowed).
    Cert {
        serial: String,
        /// Print its chain (PEM) instead.
        #[arg(long)]
        pem: bool,
    },
    /// Revoke a certificate by serial, or every certificate matching --name-pattern.
    Revoke(RevokeArgs),
    /// ACME accounts.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// External Account Binding keys (RFC 8555 §7.3.4).
    #[command(subcommand)]
    Eab(EabCommand),
    /// The CA chain: root and intermediate (PEM).
    Ca {
        /// Write the chain (intermediate then root) to this file instead of printing it.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Sign a fresh CRL now.
    Crl,
    /// Renewal windows (ACME Renewal Information, RFC 9773), e.g. "renew now" for an incident.
    #[command(subcommand)]
    Ari(AriCommand),
    /// The audit log, newest first: issuance, revocation, account changes, admin actions and
    /// refused requests.
    Audit(AuditArgs),
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// e.g. certificate.issued, certificate.revoked, auth.refused, admin.action.
    #[arg(long)]
    pub kind: Option<String>,
    /// e.g. account:<id>, admin:<subject>, ip:<address>.
    #[arg(long)]
    pub actor: Option<String>,
    /// e.g. serial:<hex>, account:<id>.
    #[arg(long)]
    pub object: Option<String>,
    /// RFC 3339 time: events at or after it.
    #[arg(long)]
    pub since: Option<String>,
    /// RFC 3339 time: events before it.
    #[arg(long)]
    pub until: Option<String>,
    /// How many events (newest first), 1 to 1000.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// A name among the identifiers; `*` matches any run of characters (*.example.com).
    #[arg(long, value_name = "PATTERN")]
    pub name: Option<String>,
    /// Only this account's certificates.
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,
    /// active, expired or revoked.
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    /// Only certificates expiring before this RFC 3339 time, `now` or `now+DURATION`.
    #[arg(long, value_name = "TIME", value_parser = WindowTime::parse)]
    pub expiring_before: Option<WindowTime>,
    /// Page size (1 to 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Every page, not just the first.
    #[arg(long)]
    pub all: bool,
    /// Export every matching certificate's chain as <serial>.pem into this directory
    /// (implies --all; progress on stderr).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["serial", "name_pattern"]))]
pub struct RevokeArgs {
    /// The serial (hex, colons allowed).
    pub serial: Option<String>,
    /// Revoke every unrevoked certificate with a name matching this (`*` matches any run of
    /// characters); lists them first, asks for --yes.
    #[arg(long, value_name = "PATTERN")]
    pub name_pattern: Option<String>,
    /// RFC 5280 reason: unspecified, keyCompromise, superseded, cessationOfOperation, … or
    /// its number.
    #[arg(long, default_value = "unspecified")]
    pub reason: String,
    /// Confirm a bulk revocation.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// List the accounts, oldest first.
    List {
        /// Every page, not just the first.
        #[arg(long)]
        all: bool,
        /// Page size (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Deactivate an account (RFC 8555 §7.3.6): its key authorizes nothing more.
    Deactivate { id: String },
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
    },
    /// List the keys (never their HMAC keys).
    List,
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
    /// Admin API listen address (admin.listen).
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,
    /// Admin listener certificate chain, PEM (admin.cert_file).
    #[arg(long, value_name = "FILE")]
    pub admin_cert_file: Option<PathBuf>,
    /// Admin listener key, PEM (admin.key_file).
    #[arg(long, value_name = "FILE")]
    pub admin_key_file: Option<PathBuf>,
    /// CA that admin client certificates must chain to, PEM (admin.ca_file).
    #[arg(long, value_name = "FILE")]
    pub admin_ca_file: Option<PathBuf>,
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
        flags = flag(flags, "admin.listen", self.admin_listen);
        flags = flag(flags, "admin.cert_file", self.admin_cert_file.clone());
        flags = flag(flags, "admin.key_file", self.admin_key_file.clone());
        flags = flag(flags, "admin.ca_file", self.admin_ca_file.clone());
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
mod admin_flag_tests {
    use clap::Parser;

    use super::{Cli, Command};

    /// The --admin-* flags of serve land on the [admin] keys, over the defaults.
    #[test]
    fn serve_admin_flags_set_the_admin_section() {
        let cli = Cli::try_parse_from([
            "mayfly",
            "serve",
            "--admin-listen",
            "127.0.0.1:19443",
            "--admin-cert-file",
            "/etc/mayfly/admin.pem",
            "--admin-key-file",
            "/etc/mayfly/admin.key",
            "--admin-ca-file",
            "/etc/mayfly/admin-ca.pem",
        ])
        .expect("parses");
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        let admin = args.config().expect("valid").admin;
        assert_eq!(admin.listen.to_string(), "127.0.0.1:19443");
        assert_eq!(
            admin.cert_file.as_deref(),
            Some(std::path::Path::new("/etc/mayfly/admin.pem"))
        );
        assert_eq!(
            admin.key_file.as_deref(),
            Some(std::path::Path::new("/etc/mayfly/admin.key"))
        );
        assert_eq!(
            admin.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/mayfly/admin-ca.pem"))
        );
        assert!(admin.enabled);
    }

    #[test]
    fn an_admin_cert_file_without_its_key_is_refused() {
        let cli = Cli::try_parse_from([
            "mayfly",
            "serve",
            "--admin-cert-file",
            "/etc/mayfly/admin.pem",
        ])
        .expect("parses");
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        let error = args.config().expect_err("refused");
        assert_eq!(
            error.0,
            "admin.cert_file and admin.key_file go together: set both or neither"
        );
    }
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
