//! Driving the `mayfly` binary: locating it, `mayfly init`, and `mayfly serve` until ready.
//!
//! Configuration goes through environment variables (`MAYFLY__SECTION__KEY`), and every
//! `MAYFLY*` variable of the test process is removed first so a developer's shell cannot
//! leak into a test.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::Subprocess;
use crate::https::{READY_TIMEOUT, wait_until_ready};
use crate::ports::{START_ATTEMPTS, free_tcp_port};

/// Bound on one-shot commands such as `mayfly init` (it generates a few keys).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// The data directory `mayfly serve` uses when none is configured, relative to its cwd.
pub const DEFAULT_DATA_DIR: &str = "mayfly-data";
/// The environment variable holding the CA key passphrase.
pub const PASSPHRASE_ENV: &str = "MAYFLY_CA_PASSPHRASE";

/// The `mayfly` binary: `$MAYFLY_BIN`, else `<target dir>/debug/mayfly`.
///
/// The target dir is `$CARGO_TARGET_DIR` (relative to the workspace root if relative), else
/// the workspace's `target/`.
pub fn binary() -> PathBuf {
    if let Some(path) = env::var_os("MAYFLY_BIN") {
        return PathBuf::from(path);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    target.join("debug").join("mayfly")
}

/// A `mayfly` command with no inherited `MAYFLY*` configuration.
pub fn command() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(binary());
    for (key, _) in env::vars_os() {
        if key.to_string_lossy().starts_with("MAYFLY") {
            command.env_remove(key);
        }
    }
    command.kill_on_drop(true);
    command
}

/// Run a one-shot `mayfly` command to completion, killing it after `timeout`.
pub async fn run(mut command: tokio::process::Command, timeout: Duration) -> Result<Output> {
    let description = format!("{:?}", command.as_std());
    let output = command.stdin(std::process::Stdio::null()).output();
    match tokio::time::timeout(timeout, output).await {
        Ok(output) => output.with_context(|| format!("running {description}")),
        Err(_) => bail!("{description} did not finish within {timeout:?}"),
    }
}

/// `mayfly init --data-dir DIR`, with the passphrase if given; fails on a non-zero exit.
pub async fn init(data_dir: &Path, passphrase: Option<&str>) -> Result<Output> {
    let mut command = command();
    command.arg("init").arg("--data-dir").arg(data_dir);
    if let Some(passphrase) = passphrase {
        command.env(PASSPHRASE_ENV, passphrase);
    }
    let output = run(command, COMMAND_TIMEOUT).await?;
    if !output.status.success() {
        bail!(
            "mayfly init failed with {}:\n{}",
            output.status,
            output_text(&output)
        );
    }
    Ok(output)
}

/// Both streams of a finished command, for error messages.
pub fn output_text(output: &Output) -> String {
    format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// How to run `mayfly serve`. The listen port is always picked by the harness.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// Working directory; the default data dir is relative to it. Defaults to the test's cwd.
    pub cwd: Option<PathBuf>,
    /// `server.data_dir`; when `None` it is left unset and Mayfly uses `./mayfly-data`.
    pub data_dir: Option<PathBuf>,
    /// `database.url`; when `None`, Mayfly's default (SQLite in the data dir).
    pub database_url: Option<String>,
    /// `validation.dns_resolver`, normally the challtestsrv address.
    pub dns_resolver: Option<std::net::SocketAddr>,
    /// `validation.http01_port`.
    pub http01_port: Option<u16>,
    /// `MAYFLY_CA_PASSPHRASE`.
    pub passphrase: Option<String>,
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// Any further environment, e.g. `("MAYFLY__VALIDATION__TLS_ALPN01_PORT", "5001")`.
    pub extra_env: Vec<(String, String)>,
}

impl ServeOptions {
    /// The data directory serve will use, as an absolute path where possible.
    pub fn effective_data_dir(&self) -> PathBuf {
        let relative = self
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        match &self.cwd {
            Some(cwd) => cwd.join(relative),
            None => env::current_dir().map_or(relative.clone(), |cwd| cwd.join(&relative)),
        }
    }

    /// The `mayfly serve` command listening on `127.0.0.1:port`.
    pub fn command(&self, port: u16) -> tokio::process::Command {
        let mut command = command();
        command
            .arg("serve")
            .env("MAYFLY__SERVER__LISTEN", format!("127.0.0.1:{port}"));
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        if let Some(dir) = &self.data_dir {
            command.env("MAYFLY__SERVER__DATA_DIR", dir);
        }
        if let Some(url) = &self.database_url {
            command.env("MAYFLY__DATABASE__URL", url);
        }
        if let Some(resolver) = self.dns_resolver {
            command.env("MAYFLY__VALIDATION__DNS_RESOLVER", resolver.to_string());
        }
        if let Some(http01_port) = self.http01_port {
            command.env("MAYFLY__VALIDATION__HTTP01_PORT", http01_port.to_string());
        }
        if let Some(passphrase) = &self.passphrase {
            command.env(PASSPHRASE_ENV, passphrase);
        }
        // The CRL listener's default port (14080) would clash between servers running at once;
        // a test that fetches the CRL sets MAYFLY__CRL__LISTEN itself, in `extra_env`.
        if let Ok(crl_port) = free_tcp_port() {
            command.env("MAYFLY__CRL__LISTEN", format!("127.0.0.1:{crl_port}"));
        }
        // Interop suites and the load generator make many accounts and orders from one
        // address and account: rate limits off, unless a test sets them in `extra_env`.
        for limit in [
            "NEW_ACCOUNTS_PER_IP_PER_HOUR",
            "NEW_ORDERS_PER_ACCOUNT_PER_HOUR",
            "FAILED_VALIDATIONS_PER_IDENTIFIER_PER_ACCOUNT_PER_HOUR",
        ] {
            command.env(format!("MAYFLY__RATE_LIMITS__{limit}"), "0");
        }
        for (key, value) in &self.extra_env {
            command.env(key, value);
        }
        command
    }
}

/// A running `mayfly serve`, killed on drop.
pub struct MayflyServer {
    process: Subprocess,
    port: u16,
    data_dir: PathBuf,
    /// The admin listener's port (issue 7).
    admin_port: u16,
    /// `MAYFLY_CA_PASSPHRASE` of the server, which `mayfly admin bootstrap` needs too.
    passphrase: Option<String>,
}

impl MayflyServer {
    /// Start serve on a fresh port and wait until `/directory` answers over HTTPS.
    ///
    /// If the port was taken in the meantime, start again on another.
    pub async fn start(options: &ServeOptions) -> Result<Self> {
        let data_dir = options.effective_data_dir();
        for attempt in 1..=START_ATTEMPTS {
            let port = free_tcp_port()?;
            let mut command = options.command(port);
            // The admin listener's default port (14443) would clash between servers running
            // at once, as the CRL listener's would.
            let admin_port = match options
                .extra_env
                .iter()
                .find(|(key, _)| key == "MAYFLY__ADMIN__LISTEN")
            {
                Some((_, address)) => address
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .context("MAYFLY__ADMIN__LISTEN has no port")?,
                None => {
                    let admin_port = free_tcp_port()?;
                    command.env("MAYFLY__ADMIN__LISTEN", format!("127.0.0.1:{admin_port}"));
                    admin_port
                }
            };
            let mut process = Subprocess::spawn("mayfly", command.as_std_mut())?;
            let url = format!("https://127.0.0.1:{port}/directory");
            let root = data_dir.join("root-ca.pem");
            match wait_until_ready(&url, &root, &mut process, READY_TIMEOUT).await {
                Ok(()) => {
                    return Ok(Self {
                        process,
                        port,
                        data_dir,
                        admin_port,
                        passphrase: options.passphrase.clone(),
                    });
                }
                Err(err) if attempt < START_ATTEMPTS && port_was_taken(&process) => {
                    eprintln!("mayfly could not bind port {port}, retrying: {err:#}");
                }
                Err(err) => return Err(err),
            }
        }
        bail!("mayfly did not start in {START_ATTEMPTS} attempts")
    }

    /// `https://127.0.0.1:PORT/directory`.
    pub fn directory_url(&self) -> String {
        format!("https://127.0.0.1:{}/directory", self.port)
    }

    /// The listen port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://127.0.0.1:ADMIN_PORT`, the admin API.
    pub fn admin_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.admin_port)
    }

    /// `mayfly admin --data-dir DIR --url ADMIN_URL ARGS`, as an operator on the CA host runs
    /// it, after `mayfly admin bootstrap` if the data directory has no admin certificate yet.
    pub async fn admin(&self, args: &[&str]) -> Result<Output> {
        if !self.data_dir.join("admin").join("admin.pem").exists() {
            let output = run(self.admin_command(&["bootstrap"]), COMMAND_TIMEOUT).await?;
            if !output.status.success() {
                bail!(
                    "mayfly admin bootstrap failed with {}:\n{}",
                    output.status,
                    output_text(&output)
                );
            }
        }
        run(self.admin_command(args), COMMAND_TIMEOUT).await
    }

    /// The `mayfly admin ARGS` command for this server, not yet run.
    pub fn admin_command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = command();
        command
            .arg("admin")
            .args(args)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--url")
            .arg(self.admin_url());
        if let Some(passphrase) = &self.passphrase {
            command.env(PASSPHRASE_ENV, passphrase);
        }
        command
    }

    /// The data directory in use.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The root every client trusts, and that issued certificates chain to.
    pub fn root_ca(&self) -> PathBuf {
        self.data_dir.join("root-ca.pem")
    }

    /// The process, for its log.
    pub fn process(&self) -> &Subprocess {
        &self.process
    }

    /// Stop the server (SIGTERM, then SIGKILL) where it stands, keeping its log readable.
    pub fn terminate(&mut self) -> Result<()> {
        self.process.stop()?;
        Ok(())
    }

    /// Stop the server (SIGTERM, then SIGKILL) and return its log.
    pub fn stop(mut self) -> Result<String> {
        self.process.stop()?;
        Ok(self.process.log())
    }
}

/// Whether the process failed because its listen address was taken by someone else.
fn port_was_taken(process: &Subprocess) -> bool {
    process.log().to_lowercase().contains("in use")
}

/// An External Account Binding key made with `mayfly admin eab add`.
#[derive(Clone, Debug)]
pub struct EabCredentials {
    /// The key id clients send as the binding's `kid`.
    pub kid: String,
    /// The HMAC key, base64url without padding (what `lego --hmac` takes).
    pub hmac_key: String,
}

/// `mayfly admin eab add --json` over the admin API of `server`.
pub async fn eab_add(server: &MayflyServer, reusable: bool) -> Result<EabCredentials> {
    let mut args = vec!["eab", "add", "--json", "--label", "acme-tests"];
    if reusable {
        args.push("--reusable");
    }
    let output = server.admin(&args).await?;
    if !output.status.success() {
        bail!(
            "mayfly admin eab add failed with {}:\n{}",
            output.status,
            output_text(&output)
        );
    }
    let created: serde_json::Value = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("parsing the output of eab add:\n{}", output_text(&output)))?;
    let field = |name: &str| {
        created[name]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("eab add printed no {name}: {created}"))
    };
    Ok(EabCredentials {
        kid: field("kid")?,
        hmac_key: field("hmac_key")?,
    })
}
