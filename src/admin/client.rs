//! The admin API's HTTPS client: reqwest with the admin's client certificate, trusting the
//! root that signed the admin listener's certificate.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::cli::AdminConnectionArgs;
use crate::config::{Config, ConfigError};

/// How long one request may take; bulk work is many short requests.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Where bootstrap writes the admin credential, and where the CLI looks for it by default.
pub fn default_credential_dir(config: &Config) -> PathBuf {
    config.server.data_dir.join("admin")
}
pub const CERT_FILE: &str = "admin.pem";
pub const KEY_FILE: &str = "admin-key.pem";

pub struct AdminClient {
    http: reqwest::Client,
    base: String,
}

/// A refusal by the server: its problem document, or its status and body.
#[derive(Debug, thiserror::Error)]
#[error("{detail} ({status}, {kind})")]
pub struct Refused {
    pub status: u16,
    pub kind: String,
    pub detail: String,
}

impl AdminClient {
    pub fn new(args: &AdminConnectionArgs, config: &Config) -> anyhow::Result<AdminClient> {
        let base = match &args.url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let mut address = config.admin.listen;
                if address.ip().is_unspecified() {
                    address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                format!("https://{address}")
            }
        };
        let dir = default_credential_dir(config);
        let cert = args.cert.clone().unwrap_or_else(|| dir.join(CERT_FILE));
        let key = args.key.clone().unwrap_or_else(|| dir.join(KEY_FILE));
        let ca = args
            .ca
            .clone()
            .unwrap_or_else(|| config.server.data_dir.join("root-ca.pem"));
        let mut identity = read(
            &cert,
            "the admin certificate (run `mayfly admin bootstrap`)",
        )?;
        identity.extend(read(&key, "the admin key (run `mayfly admin bootstrap`)")?);
        let identity = reqwest::Identity::from_pem(&identity).map_err(|e| {
            ConfigError(format!(
                "{} and {} are not a certificate and its key: {e}",
                cert.display(),
                key.display()
            ))
        })?;
        let roots = reqwest::Certificate::from_pem_bundle(&read(&ca, "the root")?)
            .map_err(|e| ConfigError(format!("{}: {e}", ca.display())))?;
        let http = reqwest::Client::builder()
            .tls_certs_only(roots)
            .identity(identity)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("building the HTTPS client")?;
        Ok(AdminClient { http, base })
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.get(self.url(path))).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .with_context(|| format!("reading the answer of {}", self.base))?;
        if status.is_success() {
            return serde_json::from_str(&text)
                .with_context(|| format!("the admin API answered {status} with non-JSON"));
        }
        let problem: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Err(Refused {
            status: status.as_u16(),
            kind: problem["type"]
                .as_str()
                .unwrap_or("no problem type")
                .to_owned(),
            detail: problem["detail"]
                .as_str()
                .map_or_else(|| text.trim().to_owned(), str::to_owned),
        }
        .into())
    }

    /// One line that says what failed and where; a refused connection most likely means the
    /// admin listener is off or elsewhere, and a failed handshake a wrong certificate.
    fn unreachable(&self, e: &reqwest::Error) -> anyhow::Error {
        let mut causes = String::new();
        let mut source: Option<&dyn std::error::Error> = Some(e);
        while let Some(cause) = source {
            causes.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        let hint = if causes.contains("Connection refused") {
            "; is `mayfly serve` running with the admin listener enabled (admin.enabled, \
             admin.listen), and is --url right?"
        } else if e.is_timeout() {
            "; the server did not answer in time"
        } else {
            "; check --cert/--key (an admin certificate from `mayfly admin bootstrap`) and --ca"
        };
        anyhow::anyhow!("cannot reach the admin API at {}{causes}{hint}", self.base)
    }
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) => bail!(ConfigError(format!(
            "reading {what} from {}: {e}",
            path.display()
        ))),
    }
}
