//! One virtual client: an account, then orders through the whole http-01 flow, one at a time.
//!
//! newOrder → POST-as-GET each authorization → publish the key authorization → POST each
//! http-01 challenge → poll the order until `ready` → finalize with a fresh P-256 CSR (polling
//! until `valid` if the server answers `processing`) → download the chain.
//!
//! The client keeps the `Replay-Nonce` of each answer for its next request, so it sends a
//! `HEAD newNonce` only for its very first request (or after a transport error). Each response
//! body is parsed once, into a `serde_json::Value`, and only when a field of it is needed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mayfly::jose::{KeyRef, SigningKey, sign_jws};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use serde_json::{Value, json};

use super::stats::{Stats, Step};
use super::{Run, Stop};
use crate::client::{ERROR_PREFIX, csr_b64};

/// Why an order (or an account) failed: a kind for counting, and a message for the report.
#[derive(Debug)]
pub struct Failure {
    pub kind: String,
    pub message: String,
}

impl Failure {
    fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Failure {
            kind: kind.into(),
            message: message.into(),
        }
    }

    fn transport(url: &str, error: &reqwest::Error) -> Self {
        let kind = if error.is_timeout() {
            "timeout"
        } else {
            "transport"
        };
        Failure::new(kind, format!("{url}: {error:#}"))
    }
}

type Flow<T> = Result<T, Failure>;

/// A successful answer.
struct Answer {
    location: Option<String>,
    body: bytes::Bytes,
}

impl Answer {
    fn json(&self, what: &str) -> Flow<Value> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Failure::new("malformed-answer", format!("{what}: {e}")))
    }
}

/// A virtual client with its own account key, account URL and nonce.
pub struct VirtualClient {
    run: Arc<Run>,
    key: SigningKey,
    /// RFC 7638 thumbprint of the account key, for key authorizations (RFC 8555 §8.1).
    thumbprint: String,
    account_url: String,
    nonce: Option<String>,
    stats: Stats,
}

impl VirtualClient {
    pub fn new(run: Arc<Run>) -> Self {
        let key = SigningKey::generate_p256();
        let thumbprint = key.jwk().thumbprint();
        VirtualClient {
            run,
            key,
            thumbprint,
            account_url: String::new(),
            nonce: None,
            stats: Stats::default(),
        }
    }

    /// Creates the account, then runs orders until the run says stop. Returns what it measured.
    pub async fn drive(mut self) -> Stats {
        let started = Instant::now();
        match self.new_account().await {
            Ok(()) => self.stats.record(Step::Account, started.elapsed()),
            Err(failure) => {
                self.run.count_failure();
                self.stats.error(&failure.kind, &failure.message);
                return self.stats;
            }
        }
        while let Some(sequence) = self.run.claim_order() {
            let started = Instant::now();
            match self.order(sequence, started).await {
                Ok(()) => self.stats.certificates += 1,
                Err(failure) => {
                    self.run.count_failure();
                    self.stats.error(&failure.kind, &failure.message);
                }
            }
        }
        self.stats
    }

    async fn new_account(&mut self) -> Flow<()> {
        let url = self.run.directory.new_account.clone();
        let answer = self
            .post(&url, Some(&json!({"termsOfServiceAgreed": true})))
            .await?;
        self.account_url = answer
            .location
            .ok_or_else(|| Failure::new("malformed-answer", "newAccount gave no Location"))?;
        Ok(())
    }

    async fn order(&mut self, sequence: u64, started: Instant) -> Flow<()> {
        let names: Vec<String> = (0..self.run.options.names_per_order)
            .map(|index| format!("{index}.{sequence}.{}.{}", self.run.label, NAME_SUFFIX))
            .collect();

        let identifiers: Vec<Value> = names
            .iter()
            .map(|name| json!({"type": "dns", "value": name}))
            .collect();
        let new_order_url = self.run.directory.new_order.clone();
        let step = Instant::now();
        let answer = self
            .post(&new_order_url, Some(&json!({"identifiers": identifiers})))
            .await?;
        let order_url = answer
            .location
            .clone()
            .ok_or_else(|| Failure::new("malformed-answer", "newOrder gave no Location"))?;
        let order = answer.json("newOrder")?;
        self.stats.record(Step::NewOrder, step.elapsed());

        let step = Instant::now();
        let mut challenges = Vec::new();
        for authz_url in string_list(&order, "authorizations")? {
            let authz = self.post(&authz_url, None).await?.json("authorization")?;
            if authz["status"] == "valid" {
                continue;
            }
            let challenge = authz["challenges"]
                .as_array()
                .and_then(|all| all.iter().find(|c| c["type"] == "http-01"))
                .ok_or_else(|| Failure::new("no-http-01", format!("{authz_url}: {authz}")))?;
            let token = string_field(challenge, "token")?;
            let url = string_field(challenge, "url")?;
            challenges.push((token, url));
        }
        self.stats.record(Step::Authorization, step.elapsed());

        let step = Instant::now();
        for (token, url) in &challenges {
            let key_authorization = format!("{token}.{}", self.thumbprint);
            self.run.responder.provision(token, key_authorization);
            self.post(url, Some(&json!({}))).await?;
        }
        self.stats.record(Step::Challenge, step.elapsed());

        let step = Instant::now();
        let ready = self.poll(&order_url, &["ready"]).await;
        for (token, _) in &challenges {
            self.run.responder.remove(token);
        }
        let ready = ready?;
        self.stats.record(Step::Poll, step.elapsed());

        let csr = csr_b64(&names.iter().map(String::as_str).collect::<Vec<_>>())
            .map_err(|e| Failure::new("generator", format!("making the CSR: {e:#}")))?;
        let step = Instant::now();
        let finalize_url = string_field(&ready, "finalize")?;
        let finalized = self
            .post(&finalize_url, Some(&json!({"csr": csr})))
            .await?
            .json("finalize")?;
        let valid = match finalized["status"].as_str() {
            Some("valid") => finalized,
            Some("processing" | "ready") => self.poll(&order_url, &["valid"]).await?,
            other => {
                return Err(Failure::new(
                    "unexpected-status",
                    format!("finalize answered an order {other:?}: {finalized}"),
                ));
            }
        };
        self.stats.record(Step::Finalize, step.elapsed());

        let step = Instant::now();
        let certificate_url = string_field(&valid, "certificate")?;
        let chain = self.post(&certificate_url, None).await?.body;
        self.stats.record(Step::Download, step.elapsed());
        self.stats.record(Step::Order, started.elapsed());

        if self.run.should_verify(sequence) {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let root = self.run.issuer_root.as_deref().unwrap_or_default();
            crate::verify::verify_pem(&chain, root, &names)
                .map_err(|e| Failure::new("verify", format!("{certificate_url}: {e:#}")))?;
            self.stats.verified += 1;
        }
        Ok(())
    }

    /// POST-as-GET `order_url` until its status is one of `wanted`; fails at once on
    /// `invalid` (with the problem of the failed challenge) and after the poll timeout.
    async fn poll(&mut self, order_url: &str, wanted: &[&str]) -> Flow<Value> {
        let deadline = Instant::now() + self.run.options.poll_timeout;
        loop {
            tokio::time::sleep(self.run.options.poll_interval).await;
            self.stats.polls += 1;
            let order = self.post(order_url, None).await?.json("order")?;
            let status = order["status"].as_str().unwrap_or_default();
            if wanted.contains(&status) {
                return Ok(order);
            }
            if status == "invalid" {
                return Err(self.why_invalid(order).await);
            }
            if Instant::now() >= deadline {
                return Err(Failure::new(
                    "poll-timeout",
                    format!(
                        "{order_url} still {status:?} after {:?}",
                        self.run.options.poll_timeout
                    ),
                ));
            }
        }
    }

    /// The problem behind an invalid order: its own `error`, else the first failed
    /// challenge's, as `invalid:<type>`.
    async fn why_invalid(&mut self, order: Value) -> Failure {
        let mut problem = order["error"].clone();
        if problem.is_null()
            && let Ok(urls) = string_list(&order, "authorizations")
        {
            for url in urls {
                let Ok(authz) = self.post(&url, None).await.and_then(|a| a.json("authz")) else {
                    continue;
                };
                let failed = authz["challenges"]
                    .as_array()
                    .and_then(|all| all.iter().find(|c| !c["error"].is_null()));
                if let Some(challenge) = failed {
                    problem = challenge["error"].clone();
                    break;
                }
            }
        }
        let kind = problem["type"].as_str().map_or("unknown", |kind| {
            kind.strip_prefix(ERROR_PREFIX).unwrap_or(kind)
        });
        Failure::new(format!("invalid:{kind}"), problem.to_string())
    }

    /// A signed POST (POST-as-GET when `payload` is `None`), retried once on `badNonce`.
    async fn post(&mut self, url: &str, payload: Option<&Value>) -> Flow<Answer> {
        match self.post_once(url, payload).await {
            Err(failure) if failure.kind == "badNonce" => {
                self.stats.bad_nonce_retries += 1;
                self.post_once(url, payload).await
            }
            other => other,
        }
    }

    async fn post_once(&mut self, url: &str, payload: Option<&Value>) -> Flow<Answer> {
        let nonce = match self.nonce.take() {
            Some(nonce) => nonce,
            None => self.fetch_nonce().await?,
        };
        let key_ref = if url == self.run.directory.new_account {
            KeyRef::Jwk
        } else {
            KeyRef::Kid(&self.account_url)
        };
        let body = sign_jws(&self.key, key_ref, Some(&nonce), url, payload).to_string();
        self.stats.requests += 1;
        let response = self
            .run
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/jose+json")
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::transport(url, &e))?;
        self.nonce = header(&response, "replay-nonce");
        let status = response.status();
        let location = header(&response, LOCATION.as_str());
        let is_problem = header(&response, CONTENT_TYPE.as_str())
            .is_some_and(|kind| kind.starts_with("application/problem+json"));
        let body = response
            .bytes()
            .await
            .map_err(|e| Failure::transport(url, &e))?;
        if status.is_success() {
            return Ok(Answer { location, body });
        }
        Err(problem(url, status, is_problem, &body))
    }

    async fn fetch_nonce(&mut self) -> Flow<String> {
        let url = &self.run.directory.new_nonce;
        self.stats.requests += 1;
        let response = self
            .run
            .http
            .head(url)
            .send()
            .await
            .map_err(|e| Failure::transport(url, &e))?;
        header(&response, "replay-nonce").ok_or_else(|| {
            Failure::new(
                format!("http-{}", response.status().as_u16()),
                format!("HEAD {url} gave no Replay-Nonce"),
            )
        })
    }
}

/// Every name ends in this; pebble-challtestsrv answers 127.0.0.1 for any name.
const NAME_SUFFIX: &str = "bench.test";

/// The failure for an error answer: its ACME problem type, or `http-<status>`.
fn problem(url: &str, status: StatusCode, is_problem: bool, body: &[u8]) -> Failure {
    let text = String::from_utf8_lossy(body);
    let kind = is_problem
        .then(|| serde_json::from_slice::<Value>(body).ok())
        .flatten()
        .and_then(|problem| {
            let kind = problem["type"].as_str()?;
            Some(kind.strip_prefix(ERROR_PREFIX).unwrap_or(kind).to_owned())
        })
        .unwrap_or_else(|| format!("http-{}", status.as_u16()));
    Failure::new(kind, format!("{status} from {url}: {text}"))
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

fn string_field(value: &Value, name: &str) -> Flow<String> {
    value[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Failure::new("malformed-answer", format!("no {name:?} in {value}")))
}

fn string_list(value: &Value, name: &str) -> Flow<Vec<String>> {
    value[name]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .ok_or_else(|| Failure::new("malformed-answer", format!("no {name:?} list in {value}")))
}

/// Whether a run of `orders` orders (or until a deadline) has work left after `claimed`.
pub(super) fn has_work(stop: &Stop, claimed: u64, started: Instant, max_time: Duration) -> bool {
    let elapsed = started.elapsed();
    if elapsed >= max_time {
        return false;
    }
    match stop {
        Stop::Orders(orders) => claimed < *orders,
        Stop::Duration(duration) => elapsed < *duration,
    }
}
