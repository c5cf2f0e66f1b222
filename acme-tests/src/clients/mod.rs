//! Real ACME clients, each obtaining a certificate over http-01 and returning the path of the
//! issued full chain (leaf first), or an error that includes the client's own output.
//! instant-acme runs in process and also reports the challenge requests it answered.

pub mod certbot;
pub mod instant;
pub mod lego;
// Issue 3, challenges: dns-01, tls-alpn-01, wildcards and IP identifiers.
pub mod certbot_dns;
pub mod dehydrated;
pub mod instant_challenges;
pub mod lego_challenges;
// Issue 4: ACME Renewal Information and CAA.
pub mod instant_ari;

/// A hook script shipped in `acme-tests/hooks/`.
pub fn hook(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("hooks")
        .join(name)
}

use std::process::Output;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Bound on one issuance by an external client, start-up included (certbot is slow to start).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// Run an external client to completion under [`CLIENT_TIMEOUT`], killing it on timeout.
///
/// Proxy variables are removed: everything here is on loopback.
async fn run_client(name: &str, mut command: tokio::process::Command) -> Result<Output> {
    for variable in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        command.env_remove(variable);
    }
    command
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let description = format!("{:?}", command.as_std());
    match tokio::time::timeout(CLIENT_TIMEOUT, command.output()).await {
        Ok(output) => output.with_context(|| format!("running {name}: {description}")),
        Err(_) => bail!("{name} did not finish within {CLIENT_TIMEOUT:?}: {description}"),
    }
}

/// Both output streams of a client, for error messages.
fn describe(output: &Output) -> String {
    format!(
        "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
