//! certbot (2.x) in standalone mode: it serves http-01 itself on the target's http-01 port.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use super::{describe, run_client};
use crate::AcmeTarget;

/// How much of certbot's own log to include in an error; the whole file is very long.
const LOG_TAIL_LINES: usize = 60;

/// Obtain a certificate for `name`, keeping certbot's state under `work_dir`.
pub async fn issue(target: &AcmeTarget, name: &str, work_dir: &Path) -> Result<PathBuf> {
    let config_dir = work_dir.join("config");
    let logs_dir = work_dir.join("logs");
    let mut command = tokio::process::Command::new("certbot");
    command
        .args([
            "certonly",
            "--standalone",
            "--non-interactive",
            "--agree-tos",
        ])
        .arg("--register-unsafely-without-email")
        .args(["--server", &target.directory_url])
        .args(["-d", name])
        .args(["--http-01-port", &target.http01_port.to_string()])
        .args(["--http-01-address", "127.0.0.1"])
        .arg("--config-dir")
        .arg(&config_dir)
        .arg("--work-dir")
        .arg(work_dir.join("work"))
        .arg("--logs-dir")
        .arg(&logs_dir)
        // certbot talks to the server through python-requests, which reads this bundle.
        .env("REQUESTS_CA_BUNDLE", &target.tls_root);
    let output = run_client("certbot", command).await?;
    let fullchain = config_dir.join("live").join(name).join("fullchain.pem");
    if !output.status.success() || !fullchain.exists() {
        bail!(
            "certbot failed for {name}: {}\n--- tail of letsencrypt.log ---\n{}",
            describe(&output),
            log_tail(&logs_dir.join("letsencrypt.log"))
        );
    }
    Ok(fullchain)
}

/// `certbot renew --force-renewal` for a certificate `issue` obtained earlier under the same
/// `work_dir`; certbot reads the server and the authenticator from its renewal configuration.
pub async fn renew_force(target: &AcmeTarget, name: &str, work_dir: &Path) -> Result<PathBuf> {
    let config_dir = work_dir.join("config");
    let logs_dir = work_dir.join("logs");
    let mut command = tokio::process::Command::new("certbot");
    command
        // certbot sleeps up to 8 minutes before a non-interactive renewal unless told not to.
        .args([
            "renew",
            "--force-renewal",
            "--non-interactive",
            "--no-random-sleep-on-renew",
        ])
        .args(["--cert-name", name])
        .arg("--config-dir")
        .arg(&config_dir)
        .arg("--work-dir")
        .arg(work_dir.join("work"))
        .arg("--logs-dir")
        .arg(&logs_dir)
        .env("REQUESTS_CA_BUNDLE", &target.tls_root);
    let output = run_client("certbot", command).await?;
    let fullchain = config_dir.join("live").join(name).join("fullchain.pem");
    if !output.status.success() || !fullchain.exists() {
        bail!(
            "certbot renew failed for {name}: {}\n--- tail of letsencrypt.log ---\n{}",
            describe(&output),
            log_tail(&logs_dir.join("letsencrypt.log"))
        );
    }
    Ok(fullchain)
}

fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}
