//! Pebble, the reference ACME test server, run by the same harness as Mayfly.
//!
//! It proves the harness and the client runners independently of Mayfly. Pebble's HTTPS
//! certificate comes from a throw-away root made here with rcgen; the root that signs issued
//! certificates is a different one, fetched from Pebble's management interface.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use serde_json::json;
use tempfile::TempDir;

use crate::https::{READY_TIMEOUT, client_trusting, wait_until_ready};
use crate::ports::{START_ATTEMPTS, free_tcp_port};
use crate::{AcmeTarget, Subprocess};

/// The binary, overridable for machines where it lives elsewhere.
const BINARY_ENV: &str = "PEBBLE";
const DEFAULT_BINARY: &str = "pebble";

/// A running Pebble, killed on drop.
pub struct PebbleServer {
    process: Subprocess,
    target: AcmeTarget,
    _files: TempDir,
}

impl PebbleServer {
    /// Start Pebble resolving names through `dns_server`, retrying on port clashes.
    pub async fn start(dns_server: SocketAddr) -> Result<Self> {
        let files = tempfile::Builder::new().prefix("pebble-").tempdir()?;
        let tls_root = write_tls_files(files.path())?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(dns_server, &files, &tls_root).await {
                Ok((process, target)) => {
                    return Ok(Self {
                        process,
                        target,
                        _files: files,
                    });
                }
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no start attempted")))
    }

    async fn start_once(
        dns_server: SocketAddr,
        files: &TempDir,
        tls_root: &Path,
    ) -> Result<(Subprocess, AcmeTarget)> {
        let port = free_tcp_port()?;
        let management_port = free_tcp_port()?;
        let http01_port = free_tcp_port()?;
        let config = json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{port}"),
                "managementListenAddress": format!("127.0.0.1:{management_port}"),
                "certificate": files.path().join("server.pem"),
                "privateKey": files.path().join("server.key"),
                "httpPort": http01_port,
                // tls-alpn-01 is not exercised; the port only has to be valid.
                "tlsPort": free_tcp_port()?,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false,
            }
        });
        let config_path = files.path().join("pebble-config.json");
        fs::write(&config_path, serde_json::to_vec_pretty(&config)?)?;

        let binary = std::env::var(BINARY_ENV).unwrap_or_else(|_| DEFAULT_BINARY.to_owned());
        let mut process = Subprocess::spawn(
            "pebble",
            Command::new(binary)
                .arg("-config")
                .arg(&config_path)
                .arg("-dnsserver")
                .arg(dns_server.to_string())
                // No random sleeps before validation, and no randomly rejected nonces:
                // both exist to exercise client retries, which only slows these tests.
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", "0")
                // Validation must really happen.
                .env_remove("PEBBLE_VA_ALWAYS_VALID"),
        )?;
        let directory_url = format!("https://127.0.0.1:{port}/dir");
        wait_until_ready(&directory_url, tls_root, &mut process, READY_TIMEOUT).await?;

        let issuer_root = files.path().join("issuer-root.pem");
        let roots_url = format!("https://127.0.0.1:{management_port}/roots/0");
        let response = client_trusting(tls_root)?.get(&roots_url).send().await?;
        if !response.status().is_success() {
            bail!("GET {roots_url} returned {}", response.status());
        }
        fs::write(&issuer_root, response.bytes().await?)?;

        let target = AcmeTarget {
            directory_url,
            tls_root: tls_root.to_owned(),
            issuer_root,
            http01_port,
        };
        Ok((process, target))
    }

    /// Where clients find Pebble and what they trust.
    pub fn target(&self) -> &AcmeTarget {
        &self.target
    }

    /// The process, for its log.
    pub fn process(&self) -> &Subprocess {
        &self.process
    }
}

/// Write a throw-away root and a server certificate for 127.0.0.1 and localhost into `dir`.
///
/// Returns the root's path.
fn write_tls_files(dir: &Path) -> Result<PathBuf> {
    let mut root_params = CertificateParams::new(Vec::<String>::new())?;
    root_params
        .distinguished_name
        .push(DnType::CommonName, "acme-tests Pebble TLS root");
    root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let root = CertifiedIssuer::self_signed(root_params, KeyPair::generate()?)?;

    let server_key = KeyPair::generate()?;
    let server_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    let server = server_params.signed_by(&server_key, &root)?;

    let root_path = dir.join("tls-root.pem");
    fs::write(&root_path, root.pem()).context("writing the TLS root")?;
    fs::write(dir.join("server.pem"), server.pem())?;
    fs::write(dir.join("server.key"), server_key.serialize_pem())?;
    Ok(root_path)
}
