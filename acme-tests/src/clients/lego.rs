//! lego (4.x) with its built-in http-01 server on the target's http-01 port.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use super::{describe, run_client};
use crate::AcmeTarget;

/// Obtain a certificate for `name`, keeping lego's state under `work_dir`.
pub async fn issue(target: &AcmeTarget, name: &str, work_dir: &Path) -> Result<PathBuf> {
    run(target, name, work_dir, &["run"]).await
}

/// `lego renew` for a certificate `issue` obtained under the same `work_dir`. lego renews when
/// fewer than `--days` days remain; a short-lived certificate always qualifies.
pub async fn renew(target: &AcmeTarget, name: &str, work_dir: &Path) -> Result<PathBuf> {
    // Like certbot, lego sleeps at random before an unattended renewal unless told not to.
    run(
        target,
        name,
        work_dir,
        &["renew", "--days", "30", "--no-random-sleep"],
    )
    .await
}

async fn run(target: &AcmeTarget, name: &str, work_dir: &Path, action: &[&str]) -> Result<PathBuf> {
    let mut command = tokio::process::Command::new("lego");
    command
        .args(["--server", &target.directory_url])
        .args(["--accept-tos", "--email", "test@example.com"])
        .args(["--domains", name])
        .arg("--http")
        .args(["--http.port", &format!("127.0.0.1:{}", target.http01_port)])
        .arg("--path")
        .arg(work_dir)
        .args(action)
        // lego trusts exactly these roots (plus the system's) for the ACME server.
        .env("LEGO_CA_CERTIFICATES", &target.tls_root);
    let output = run_client("lego", command).await?;
    // lego bundles the issuer after the leaf unless --no-bundle is given.
    let fullchain = work_dir.join("certificates").join(format!("{name}.crt"));
    if !output.status.success() || !fullchain.exists() {
        bail!("lego failed for {name}: {}", describe(&output));
    }
    Ok(fullchain)
}
