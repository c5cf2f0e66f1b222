//! `pebble-challtestsrv` as the mock DNS server for the server under test.
//!
//! Every name resolves to 127.0.0.1 with no AAAA records, so the server's http-01 validation
//! connects to the client under test on loopback. The management API (documented in
//! pebble's `cmd/pebble-challtestsrv/README.md`) records the DNS queries it answered, which
//! lets a test assert that validation really happened.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::Subprocess;
use crate::ports::{START_ATTEMPTS, free_tcp_port, free_tcp_udp_port};

/// The binary, overridable for machines where it lives elsewhere.
const BINARY_ENV: &str = "CHALLTESTSRV";
const DEFAULT_BINARY: &str = "pebble-challtestsrv";
/// How long the listeners may take to come up; it is a small Go program.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `pebble-challtestsrv`, serving DNS only.
pub struct ChallTestSrv {
    process: Subprocess,
    dns_port: u16,
    management_url: String,
    client: reqwest::Client,
}

/// One question the DNS server was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsQuestion {
    /// Fully qualified, with the trailing dot, as the server recorded it.
    pub name: String,
    /// The numeric query type: 1 is A, 28 is AAAA, 16 is TXT, 257 is CAA.
    pub qtype: u16,
}

impl ChallTestSrv {
    /// Start on fresh ports, retrying if a port was taken in the meantime.
    pub async fn start() -> Result<Self> {
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once().await {
                Ok(server) => return Ok(server),
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no start attempted")))
    }

    /// Start with its http-01 server on `127.0.0.1:<http01_port>` as well, so a client hook can
    /// publish key authorizations through the management API (`add_http01`).
    pub async fn start_with_http01(http01_port: u16) -> Result<Self> {
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once_with(Some(http01_port)).await {
                Ok(server) => return Ok(server),
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no start attempted")))
    }

    async fn start_once() -> Result<Self> {
        Self::start_once_with(None).await
    }

    async fn start_once_with(http01_port: Option<u16>) -> Result<Self> {
        let dns_port = free_tcp_udp_port()?;
        let management_port = free_tcp_port()?;
        let binary = std::env::var(BINARY_ENV).unwrap_or_else(|_| DEFAULT_BINARY.to_owned());
        let http01 = http01_port.map_or(String::new(), |p| format!("127.0.0.1:{p}"));
        let mut process = Subprocess::spawn(
            "pebble-challtestsrv",
            Command::new(binary)
                .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
                .args(["-management", &format!("127.0.0.1:{management_port}")])
                .args(["-http01", &http01, "-https01", "", "-tlsalpn01", ""])
                .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""]),
        )?;
        let mut ports = vec![dns_port, management_port];
        ports.extend(http01_port);
        wait_for_tcp(&mut process, &ports).await?;
        Ok(Self {
            process,
            dns_port,
            management_url: format!("http://127.0.0.1:{management_port}"),
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(5))
                .build()?,
        })
    }

    /// The DNS server address, for the server under test's resolver setting.
    pub fn dns_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.dns_port))
    }

    /// The process, for its log.
    pub fn process(&self) -> &Subprocess {
        &self.process
    }

    /// Answer A queries for `host` with `addresses` instead of the default.
    pub async fn add_a(&self, host: &str, addresses: &[&str]) -> Result<()> {
        self.post("add-a", json!({ "host": host, "addresses": addresses }))
            .await
            .map(drop)
    }

    /// Remove the A records added for `host`.
    pub async fn clear_a(&self, host: &str) -> Result<()> {
        self.post("clear-a", json!({ "host": host }))
            .await
            .map(drop)
    }

    /// The management API's base URL, for hook scripts (`$CHALLTESTSRV_URL`).
    pub fn management_url(&self) -> &str {
        &self.management_url
    }

    /// Add a TXT record `value` at `host` (e.g. `_acme-challenge.a.test`); values accumulate.
    pub async fn set_txt(&self, host: &str, value: &str) -> Result<()> {
        self.post("set-txt", json!({ "host": fqdn(host), "value": value }))
            .await
            .map(drop)
    }

    /// Remove every TXT record at `host`.
    pub async fn clear_txt(&self, host: &str) -> Result<()> {
        self.post("clear-txt", json!({ "host": fqdn(host) }))
            .await
            .map(drop)
    }

    /// Make `host` a CNAME for `target` (challtestsrv follows one level itself).
    pub async fn set_cname(&self, host: &str, target: &str) -> Result<()> {
        self.post(
            "set-cname",
            json!({ "host": fqdn(host), "target": fqdn(target) }),
        )
        .await
        .map(drop)
    }

    /// Add CAA records at `host` (RFC 8659), one per `(tag, value)`; they accumulate.
    /// challtestsrv always sends flags 0, so the critical flag cannot be set here.
    pub async fn add_caa(&self, host: &str, policies: &[(&str, &str)]) -> Result<()> {
        let policies: Vec<Value> = policies
            .iter()
            .map(|(tag, value)| json!({ "tag": tag, "value": value }))
            .collect();
        self.post(
            "add-caa",
            json!({ "host": fqdn(host), "policies": policies }),
        )
        .await
        .map(drop)
    }

    /// Remove every CAA record at `host`.
    pub async fn clear_caa(&self, host: &str) -> Result<()> {
        self.post("clear-caa", json!({ "host": fqdn(host) }))
            .await
            .map(drop)
    }

    /// The DNS questions received for `host` (given without the trailing dot).
    pub async fn dns_queries(&self, host: &str) -> Result<Vec<DnsQuestion>> {
        let history = self
            .post("dns-request-history", json!({ "host": host }))
            .await?;
        let entries = history.as_array().context("history is not a list")?;
        entries
            .iter()
            .map(|entry| {
                let question = &entry["Question"];
                Ok(DnsQuestion {
                    name: question["Name"].as_str().context("no Name")?.to_owned(),
                    qtype: question["Qtype"]
                        .as_u64()
                        .and_then(|qtype| u16::try_from(qtype).ok())
                        .context("no Qtype")?,
                })
            })
            .collect()
    }

    /// Forget the DNS questions recorded for `host`.
    pub async fn clear_dns_queries(&self, host: &str) -> Result<()> {
        self.post(
            "clear-request-history",
            json!({ "host": host, "type": "dns" }),
        )
        .await
        .map(drop)
    }

    async fn post(&self, endpoint: &str, body: Value) -> Result<Value> {
        let url = format!("{}/{endpoint}", self.management_url);
        let response = self.client.post(&url).json(&body).send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("POST {url} returned {status}: {text}");
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("POST {url} returned {text:?}"))
    }
}

/// challtestsrv keys its records by fully qualified name, with the trailing dot.
fn fqdn(host: &str) -> String {
    if host.ends_with('.') {
        host.to_owned()
    } else {
        format!("{host}.")
    }
}

/// Wait until every port accepts TCP connections, or fail with the process log.
pub(crate) async fn wait_for_tcp(process: &mut Subprocess, ports: &[u16]) -> Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    for &port in ports {
        loop {
            if let Some(status) = process.try_exit_status()? {
                bail!(
                    "{} exited with {status}; log:\n{}",
                    process.name(),
                    process.log()
                );
            }
            if tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                .await
                .is_ok()
            {
                break;
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} not listening on {port} after {START_TIMEOUT:?}; log:\n{}",
                    process.name(),
                    process.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}
