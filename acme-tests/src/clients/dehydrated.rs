//! dehydrated (0.7) with its hooks in `hooks/`: dns-01 sets TXT records in
//! pebble-challtestsrv, and http-01 publishes key authorizations to a pebble-challtestsrv
//! whose http-01 server listens on the validation port.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use super::{describe, hook, run_client};
use crate::AcmeTarget;

/// The challenge dehydrated answers.
pub enum Challenge<'a> {
    /// http-01, published by the hook to the challtestsrv at this management URL, whose
    /// http-01 server listens on the target's http-01 port.
    Http01 { challtestsrv_url: &'a str },
    /// dns-01, TXT records set by the hook in the challtestsrv at this management URL.
    Dns01 { challtestsrv_url: &'a str },
}

/// Register an account, then obtain a certificate for `name`.
pub async fn issue(
    target: &AcmeTarget,
    name: &str,
    challenge: Challenge<'_>,
    work_dir: &Path,
) -> Result<PathBuf> {
    let wellknown = work_dir.join("wellknown");
    std::fs::create_dir_all(&wellknown)?;
    let mut config = String::new();
    writeln!(config, "CA=\"{}\"", target.directory_url)?;
    writeln!(config, "BASEDIR=\"{}\"", work_dir.display())?;
    writeln!(config, "WELLKNOWN=\"{}\"", wellknown.display())?;
    writeln!(config, "CONTACT_EMAIL=\"test@example.com\"")?;
    // ECDSA keys: quick to generate, and the profile Mayfly signs with.
    writeln!(config, "KEY_ALGO=\"prime256v1\"")?;
    writeln!(
        config,
        "CURL_OPTS=\"--cacert {} --noproxy *\"",
        target.tls_root.display()
    )?;
    let (kind, hook_script, challtestsrv) = match challenge {
        Challenge::Http01 { challtestsrv_url } => {
            ("http-01", "dehydrated-http.sh", challtestsrv_url)
        }
        Challenge::Dns01 { challtestsrv_url } => ("dns-01", "dehydrated-dns.sh", challtestsrv_url),
    };
    writeln!(config, "CHALLENGETYPE=\"{kind}\"")?;
    writeln!(config, "HOOK=\"{}\"", hook(hook_script).display())?;
    let config_path = work_dir.join("config");
    std::fs::write(&config_path, config)?;

    let command = |args: &[&str]| {
        let mut command = tokio::process::Command::new("dehydrated");
        command.args(args).arg("--config").arg(&config_path);
        command.env("CHALLTESTSRV_URL", challtestsrv);
        command
    };
    let output = run_client("dehydrated", command(&["--register", "--accept-terms"])).await?;
    if !output.status.success() {
        bail!("dehydrated --register failed: {}", describe(&output));
    }
    let output = run_client("dehydrated", command(&["--cron", "--domain", name])).await?;
    let fullchain = work_dir.join("certs").join(name).join("fullchain.pem");
    if !output.status.success() || !fullchain.exists() {
        bail!("dehydrated failed for {name}: {}", describe(&output));
    }
    Ok(fullchain)
}
