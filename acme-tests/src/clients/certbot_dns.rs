//! certbot (2.x) with dns-01 through `--manual` and the auth/cleanup hooks in `hooks/`, which
//! set the TXT records in pebble-challtestsrv.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::{describe, hook, run_client};
use crate::AcmeTarget;

/// Obtain one certificate for `names` (wildcards allowed) over dns-01.
pub async fn issue(
    target: &AcmeTarget,
    names: &[&str],
    challtestsrv_url: &str,
    work_dir: &Path,
) -> Result<PathBuf> {
    let config_dir = work_dir.join("config");
    let script = hook("certbot-dns.sh");
    let mut command = tokio::process::Command::new("certbot");
    command
        .args(["certonly", "--manual", "--preferred-challenges", "dns"])
        .args(["--non-interactive", "--agree-tos"])
        .arg("--register-unsafely-without-email")
        .arg("--manual-auth-hook")
        .arg(format!("{} auth", script.display()))
        .arg("--manual-cleanup-hook")
        .arg(format!("{} cleanup", script.display()))
        .args(["--server", &target.directory_url])
        .arg("--config-dir")
        .arg(&config_dir)
        .arg("--work-dir")
        .arg(work_dir.join("work"))
        .arg("--logs-dir")
        .arg(work_dir.join("logs"))
        .env("REQUESTS_CA_BUNDLE", &target.tls_root)
        .env("CHALLTESTSRV_URL", challtestsrv_url);
    for name in names {
        command.args(["-d", name]);
    }
    let output = run_client("certbot", command).await?;
    if !output.status.success() {
        bail!(
            "certbot (dns-01) failed for {names:?}: {}",
            describe(&output)
        );
    }
    // certbot names the lineage after the first name, without `*.`.
    let lineage = names.first().context("no names")?.trim_start_matches("*.");
    let fullchain = config_dir.join("live").join(lineage).join("fullchain.pem");
    if !fullchain.exists() {
        bail!(
            "certbot reported success but wrote no {}",
            fullchain.display()
        );
    }
    Ok(fullchain)
}
