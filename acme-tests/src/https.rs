//! An HTTPS client that trusts only a test root, and readiness polling built on it.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::Subprocess;

/// How long a server may take to answer its first request.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often readiness is polled.
const READY_POLL: Duration = Duration::from_millis(100);
/// Per-request bound, so a wedged server cannot stall a test.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A client trusting exactly the certificates in the PEM file at `root_pem` (no system roots).
pub fn client_trusting(root_pem: &Path) -> Result<reqwest::Client> {
    crate::install_crypto_provider();
    let pem = fs::read(root_pem).with_context(|| format!("reading {}", root_pem.display()))?;
    let roots = reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("parsing {}", root_pem.display()))?;
    Ok(reqwest::Client::builder()
        .tls_certs_only(roots)
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()?)
}

/// Poll `url` until it answers 200, trusting `root_pem` (which may not exist yet).
///
/// Fails early, with the log, if `process` exits; fails with the log after `timeout`.
pub async fn wait_until_ready(
    url: &str,
    root_pem: &Path,
    process: &mut Subprocess,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut client = None;
    let mut last_error = String::from("no attempt made");
    loop {
        if let Some(status) = process.try_exit_status()? {
            bail!(
                "{} exited early with {status} before {url} was ready; log:\n{}",
                process.name(),
                process.log()
            );
        }
        if client.is_none() && root_pem.exists() {
            // The file may be half-written; retry on the next poll if it does not parse.
            match client_trusting(root_pem) {
                Ok(built) => client = Some(built),
                Err(err) => last_error = format!("{err:#}"),
            }
        }
        if let Some(client) = &client {
            match client.get(url).send().await {
                Ok(response) if response.status() == reqwest::StatusCode::OK => return Ok(()),
                Ok(response) => last_error = format!("status {}", response.status()),
                Err(err) => last_error = format!("{err:#}"),
            }
        }
        if Instant::now() >= deadline {
            bail!(
                "{url} not ready after {timeout:?} (last error: {last_error}); {} log:\n{}",
                process.name(),
                process.log()
            );
        }
        tokio::time::sleep(READY_POLL).await;
    }
}
