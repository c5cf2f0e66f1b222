//! lego (4.x) with tls-alpn-01 (`--tls`, lego's own responder) and dns-01 (`--dns exec`, the
//! hook in `hooks/` setting TXT records in pebble-challtestsrv).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::{describe, hook, run_client};
use crate::AcmeTarget;

/// The challenge lego answers.
pub enum Challenge<'a> {
    /// tls-alpn-01 on 127.0.0.1:`port`.
    TlsAlpn01 { port: u16 },
    /// dns-01 through the exec provider; lego checks nothing itself (`--dns.disable-cp`) and
    /// asks only `resolver` if it asks at all.
    Dns01 {
        resolver: SocketAddr,
        challtestsrv_url: &'a str,
    },
}

/// Obtain one certificate for `names`.
pub async fn issue(
    target: &AcmeTarget,
    names: &[&str],
    challenge: Challenge<'_>,
    work_dir: &Path,
) -> Result<PathBuf> {
    let mut command = tokio::process::Command::new("lego");
    command
        .args(["--server", &target.directory_url])
        .args(["--accept-tos", "--email", "test@example.com"])
        .arg("--path")
        .arg(work_dir)
        .env("LEGO_CA_CERTIFICATES", &target.tls_root);
    for name in names {
        command.args(["--domains", name]);
    }
    match challenge {
        Challenge::TlsAlpn01 { port } => {
            command
                .arg("--tls")
                .args(["--tls.port", &format!("127.0.0.1:{port}")]);
        }
        Challenge::Dns01 {
            resolver,
            challtestsrv_url,
        } => {
            command
                .args(["--dns", "exec", "--dns.disable-cp"])
                .args(["--dns.resolvers", &resolver.to_string()])
                .env("EXEC_PATH", hook("lego-dns-exec.sh"))
                // lego waits this long between the names of one order (default 60 s); the
                // mock DNS needs no pause.
                .env("EXEC_SEQUENCE_INTERVAL", "1")
                .env("LEGO_DISABLE_CNAME_SUPPORT", "true")
                .env("CHALLTESTSRV_URL", challtestsrv_url);
        }
    }
    command.arg("run");
    let output = run_client("lego", command).await?;
    // lego names the files after the first domain, `*` written as `_`.
    let first = names.first().context("no names")?.replace('*', "_");
    let fullchain = work_dir.join("certificates").join(format!("{first}.crt"));
    if !output.status.success() || !fullchain.exists() {
        bail!("lego failed for {names:?}: {}", describe(&output));
    }
    Ok(fullchain)
}
