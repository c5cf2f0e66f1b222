//! A minimal, hand-rolled ACME client (RFC 8555) that spreads its requests over several
//! replicas of one CA.
//!
//! Real clients talk to one base URL. This one knows every replica's base URL and, in its
//! alternating mode ([`AcmeClient::post`], [`AcmeClient::fetch_nonce`]), sends each request to
//! the replica after the one that answered the previous request. URLs handed out by one
//! replica are reduced to their path ([`AcmeClient::path_from`], which also checks that the
//! replica used its own base URL) and re-based on the replica the next request goes to; the
//! JWS `url` and the `kid` always name the replica that receives the request, as the server
//! requires. The `Replay-Nonce` of each answer is used in the next request, so in alternating
//! mode every nonce is redeemed by a replica other than the one that issued it.
//!
//! Every request is recorded in a [`Exchange`] trace, and the lower-level methods
//! ([`AcmeClient::post_at`], [`AcmeClient::signed_request`]) let a test pick the replica and
//! the nonce itself, e.g. to replay a nonce or to race two replicas.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use mayfly::jose::{KeyRef, SigningKey, base64url, key_authorization, sign_jws};
use rcgen::{CertificateParams, DistinguishedName, KeyPair};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, LOCATION};
use serde_json::{Value, json};

use crate::clients::instant::ChallengeServer;

/// Bound on every polling loop (authorization, order).
pub const POLL_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between two polls.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// The prefix of every ACME problem type.
pub const ERROR_PREFIX: &str = "urn:ietf:params:acme:error:";
pub const NEW_NONCE_PATH: &str = "/acme/new-nonce";
pub const NEW_ACCOUNT_PATH: &str = "/acme/new-account";
pub const NEW_ORDER_PATH: &str = "/acme/new-order";

/// One request the client sent, for assertions on where requests went.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// The replica that received the request (an index into the client's base URLs).
    pub replica: usize,
    /// `HEAD` or `POST`.
    pub method: &'static str,
    /// The request path.
    pub path: String,
    /// The replica that issued the nonce the request carried (`None` for HEAD).
    pub nonce_from: Option<usize>,
    /// The answer's status code.
    pub status: u16,
}

/// An answer from one replica.
#[derive(Clone, Debug)]
pub struct AcmeResponse {
    /// The replica that answered.
    pub replica: usize,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl AcmeResponse {
    /// The `Replay-Nonce` header.
    pub fn nonce(&self) -> Option<String> {
        header(&self.headers, "replay-nonce")
    }

    /// The `Location` header.
    pub fn location(&self) -> Option<String> {
        header(&self.headers, LOCATION.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).with_context(|| format!("{self} is not JSON"))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The problem type without the ACME prefix (`badNonce`), if the body is a problem.
    pub fn problem_type(&self) -> Option<String> {
        let is_problem = header(&self.headers, CONTENT_TYPE.as_str())
            .is_some_and(|content_type| content_type.starts_with("application/problem+json"));
        if !is_problem {
            return None;
        }
        let body: Value = serde_json::from_slice(&self.body).ok()?;
        let kind = body["type"].as_str()?;
        Some(kind.strip_prefix(ERROR_PREFIX).unwrap_or(kind).to_owned())
    }

    /// Fails with the whole answer unless the status is `expected`.
    pub fn expect_status(self, expected: StatusCode) -> Result<Self> {
        ensure!(self.status == expected, "expected {expected}, got {self}");
        Ok(self)
    }
}

impl std::fmt::Display for AcmeResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} from replica {}: {}",
            self.status,
            self.replica,
            self.text()
        )
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// What the http-01 flow leaves behind, for assertions.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The order's path (`/acme/order/<id>`).
    pub order_path: String,
    /// The order's id.
    pub order_id: String,
    /// The certificate's path (`/acme/cert/<id>`).
    pub certificate_path: String,
    /// The chain, leaf first, as downloaded.
    pub chain_pem: String,
}

/// An ACME client with one account key and several replicas to talk to.
pub struct AcmeClient {
    http: reqwest::Client,
    key: SigningKey,
    bases: Vec<String>,
    /// The replica the next alternating request goes to.
    turn: usize,
    /// The path every ACME resource is under: `/acme`, or `/acme/<provisioner>` for another
    /// ACME provisioner's directory.
    root: String,
    /// The account URL's path, once the account exists.
    account_path: Option<String>,
    /// The nonce from the last answer, and the replica that issued it.
    nonce: Option<(String, usize)>,
    trace: Vec<Exchange>,
}

impl AcmeClient {
    /// A client for the replicas at `bases` (`https://127.0.0.1:PORT`, no trailing slash),
    /// with a fresh P-256 account key. The first alternating request goes to replica 0.
    pub fn new(http: reqwest::Client, bases: Vec<String>) -> Self {
        assert!(!bases.is_empty(), "an ACME client needs a server");
        AcmeClient {
            http,
            key: SigningKey::generate_p256(),
            bases,
            turn: 0,
            root: "/acme".to_owned(),
            account_path: None,
            nonce: None,
            trace: Vec::new(),
        }
    }

    /// Talks to the ACME provisioner `name`'s directory (`/acme/<name>/…`) instead of the
    /// default one.
    pub fn with_provisioner(mut self, name: &str) -> Self {
        self.root = format!("/acme/{name}");
        self
    }

    /// A path under this client's ACME root, e.g. `/acme/new-order`.
    fn acme_path(&self, resource: &str) -> String {
        format!("{}/{resource}", self.root)
    }

    /// The account key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// Signs from now on with `key` (after a key change); returns the old key.
    pub fn replace_key(&mut self, key: SigningKey) -> SigningKey {
        std::mem::replace(&mut self.key, key)
    }

    /// The path of an ACME resource of this client's directory, e.g. `key-change`.
    pub fn resource_path(&self, resource: &str) -> String {
        self.acme_path(resource)
    }

    /// The base URL of `replica`.
    pub fn base(&self, replica: usize) -> &str {
        &self.bases[replica]
    }

    /// How many replicas the client knows.
    pub fn replicas(&self) -> usize {
        self.bases.len()
    }

    /// Every request sent so far, in order.
    pub fn trace(&self) -> &[Exchange] {
        &self.trace
    }

    /// `path` on `replica`.
    pub fn url_at(&self, replica: usize, path: &str) -> String {
        format!("{}{path}", self.bases[replica])
    }

    /// The path of `url`, which must be on `replica`'s base URL: each replica hands out URLs
    /// under its own base.
    pub fn path_from(&self, url: &str, replica: usize) -> Result<String> {
        let base = &self.bases[replica];
        let path = url
            .strip_prefix(base.as_str())
            .filter(|path| path.starts_with('/'))
            .with_context(|| format!("replica {replica} handed out {url:?}, not under {base}"))?;
        Ok(path.to_owned())
    }

    /// The account URL's path, once the account exists.
    pub fn account_path(&self) -> Option<&str> {
        self.account_path.as_deref()
    }

    /// The account URL as `replica` knows it, for the `kid`.
    pub fn account_url_at(&self, replica: usize) -> Result<String> {
        let path = self
            .account_path
            .as_deref()
            .context("no account yet: call new_account first")?;
        Ok(self.url_at(replica, path))
    }

    /// The replica the next alternating request goes to; advances the turn.
    fn next_replica(&mut self) -> usize {
        let replica = self.turn;
        self.turn = (self.turn + 1) % self.bases.len();
        replica
    }

    /// `HEAD new-nonce` at `replica`: 200 with a nonce (RFC 8555 §7.2).
    pub async fn head_nonce_at(&mut self, replica: usize) -> Result<String> {
        let nonce_path = self.acme_path("new-nonce");
        let url = self.url_at(replica, &nonce_path);
        let response = self
            .http
            .head(&url)
            .send()
            .await
            .with_context(|| format!("HEAD {url}"))?;
        let status = response.status();
        self.trace.push(Exchange {
            replica,
            method: "HEAD",
            path: nonce_path,
            nonce_from: None,
            status: status.as_u16(),
        });
        ensure!(status == StatusCode::OK, "HEAD {url} answered {status}");
        header(response.headers(), "replay-nonce")
            .with_context(|| format!("HEAD {url} gave no Replay-Nonce"))
    }

    /// `HEAD new-nonce` at the next replica in turn; the nonce is kept for the next POST.
    pub async fn fetch_nonce(&mut self) -> Result<String> {
        let replica = self.next_replica();
        let nonce = self.head_nonce_at(replica).await?;
        self.nonce = Some((nonce.clone(), replica));
        Ok(nonce)
    }

    /// A signed request for `path` at `replica`: `jwk` for newAccount, else the account's
    /// `kid` on that replica. `payload: None` is POST-as-GET.
    pub fn signed_request(
        &self,
        replica: usize,
        path: &str,
        nonce: &str,
        payload: Option<&Value>,
    ) -> Result<Value> {
        let url = self.url_at(replica, path);
        let kid;
        let key_ref = if path == self.acme_path("new-account") {
            KeyRef::Jwk
        } else {
            kid = self.account_url_at(replica)?;
            KeyRef::Kid(&kid)
        };
        Ok(sign_jws(&self.key, key_ref, Some(nonce), &url, payload))
    }

    /// Send a JWS (as built by [`AcmeClient::signed_request`]) to `path` at `replica`,
    /// without recording it; safe to call concurrently.
    pub async fn send(&self, replica: usize, path: &str, jws: &Value) -> Result<AcmeResponse> {
        let url = self.url_at(replica, path);
        let response = self
            .http
            .post(&url)
            .header(CONTENT_TYPE, "application/jose+json")
            .body(jws.to_string())
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .with_context(|| format!("reading the answer to POST {url}"))?
            .to_vec();
        Ok(AcmeResponse {
            replica,
            status,
            headers,
            body,
        })
    }

    /// POST to `path` at `replica` with an explicit nonce (issued by `nonce_from`, if known).
    /// The answer's nonce is kept for the next alternating request.
    pub async fn post_at(
        &mut self,
        replica: usize,
        path: &str,
        nonce: &str,
        nonce_from: Option<usize>,
        payload: Option<&Value>,
    ) -> Result<AcmeResponse> {
        let jws = self.signed_request(replica, path, nonce, payload)?;
        let response = self.send(replica, path, &jws).await?;
        self.trace.push(Exchange {
            replica,
            method: "POST",
            path: path.to_owned(),
            nonce_from,
            status: response.status.as_u16(),
        });
        self.nonce = response.nonce().map(|nonce| (nonce, replica));
        Ok(response)
    }

    /// POST to `path` at the next replica in turn, with the nonce from the last answer
    /// (fetching one first, from the replica in turn, if there is none).
    pub async fn post(&mut self, path: &str, payload: Option<&Value>) -> Result<AcmeResponse> {
        if self.nonce.is_none() {
            self.fetch_nonce().await?;
        }
        let (nonce, nonce_from) = self.nonce.take().context("no nonce")?;
        let replica = self.next_replica();
        self.post_at(replica, path, &nonce, Some(nonce_from), payload)
            .await
    }

    /// newAccount (RFC 8555 §7.3), agreeing to the terms; expects 201.
    pub async fn new_account(&mut self) -> Result<()> {
        let payload = json!({"termsOfServiceAgreed": true});
        let response = self
            .post(&self.acme_path("new-account"), Some(&payload))
            .await?
            .expect_status(StatusCode::CREATED)?;
        let location = response.location().context("newAccount gave no Location")?;
        let path = self.path_from(&location, response.replica)?;
        ensure!(
            path.starts_with(&self.acme_path("account/")),
            "the account URL {location} is not an account path"
        );
        self.account_path = Some(path);
        Ok(())
    }

    /// newOrder for DNS `names`; expects 201. Returns the order's path and body.
    pub async fn new_order(&mut self, names: &[&str]) -> Result<(String, Value)> {
        let identifiers: Vec<Value> = names
            .iter()
            .map(|name| json!({"type": "dns", "value": name}))
            .collect();
        let response = self
            .post(
                &self.acme_path("new-order"),
                Some(&json!({"identifiers": identifiers})),
            )
            .await?
            .expect_status(StatusCode::CREATED)?;
        let location = response.location().context("newOrder gave no Location")?;
        let path = self.path_from(&location, response.replica)?;
        Ok((path, response.json()?))
    }

    /// POST-as-GET a resource at the next replica; expects 200 and JSON.
    pub async fn get_json(&mut self, path: &str) -> Result<(Value, usize)> {
        let response = self.post(path, None).await?.expect_status(StatusCode::OK)?;
        Ok((response.json()?, response.replica))
    }

    /// POST-as-GET `path` until `done` holds for its `status`, or fail after [`POLL_TIMEOUT`]
    /// (or at once if the status is `invalid`).
    pub async fn poll(
        &mut self,
        path: &str,
        done: impl Fn(&str) -> bool,
    ) -> Result<(Value, usize)> {
        let deadline = Instant::now() + POLL_TIMEOUT;
        loop {
            let (body, replica) = self.get_json(path).await?;
            let status = body["status"].as_str().unwrap_or_default();
            if done(status) {
                return Ok((body, replica));
            }
            ensure!(status != "invalid", "{path} became invalid: {body}");
            ensure!(
                Instant::now() < deadline,
                "{path} still {status:?} after {POLL_TIMEOUT:?}: {body}"
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Answer every pending authorization of `order` over http-01 (served by `server`) and
    /// wait until the order is `ready`. Returns the ready order.
    pub async fn authorize_http01(
        &mut self,
        order: &Value,
        order_replica: usize,
        order_path: &str,
        server: &ChallengeServer,
    ) -> Result<Value> {
        let authorizations = order["authorizations"]
            .as_array()
            .context("the order lists no authorizations")?;
        for authz_url in authorizations {
            let authz_url = authz_url
                .as_str()
                .context("an authorization is no string")?;
            let authz_path = self.path_from(authz_url, order_replica)?;
            let (authz, authz_replica) = self.get_json(&authz_path).await?;
            match authz["status"].as_str() {
                Some("pending") => {}
                Some("valid") => continue,
                other => bail!("authorization {authz_path} is {other:?}: {authz}"),
            }
            let challenge = authz["challenges"]
                .as_array()
                .and_then(|challenges| {
                    challenges
                        .iter()
                        .find(|challenge| challenge["type"] == "http-01")
                })
                .with_context(|| format!("no http-01 challenge in {authz}"))?;
            let token = challenge["token"].as_str().context("no token")?;
            let challenge_url = challenge["url"].as_str().context("no challenge url")?;
            let challenge_path = self.path_from(challenge_url, authz_replica)?;
            server.provision(token, &key_authorization(token, &self.key.jwk()));
            self.post(&challenge_path, Some(&json!({})))
                .await?
                .expect_status(StatusCode::OK)?;
            self.poll(&authz_path, |status| status == "valid").await?;
        }
        let (ready, _) = self
            .poll(order_path, |status| status == "ready" || status == "valid")
            .await?;
        ensure!(
            ready["status"] == "ready",
            "the order is not ready: {ready}"
        );
        Ok(ready)
    }

    /// Download the certificate at `url` (as handed out by `replica`); expects a PEM chain.
    pub async fn download(&mut self, url: &str, replica: usize) -> Result<String> {
        let path = self.path_from(url, replica)?;
        let response = self
            .post(&path, None)
            .await?
            .expect_status(StatusCode::OK)?;
        let content_type = header(&response.headers, CONTENT_TYPE.as_str()).unwrap_or_default();
        ensure!(
            content_type.starts_with("application/pem-certificate-chain"),
            "the certificate came as {content_type:?}"
        );
        Ok(response.text())
    }

    /// The whole http-01 flow for `names`, alternating replicas on every request: order,
    /// authorizations, finalize with a fresh key's CSR, poll, download.
    pub async fn issue(&mut self, names: &[&str], server: &ChallengeServer) -> Result<Issued> {
        let (order_path, order) = self.new_order(names).await?;
        let order_replica = self.trace.last().map_or(0, |exchange| exchange.replica);
        let ready = self
            .authorize_http01(&order, order_replica, &order_path, server)
            .await?;
        let finalize_url = ready["finalize"].as_str().context("no finalize URL")?;
        // The ready order came from the replica before the one in turn now.
        let ready_replica = self.trace.last().map_or(0, |exchange| exchange.replica);
        let finalize_path = self.path_from(finalize_url, ready_replica)?;
        let csr = csr_b64(names)?;
        let response = self
            .post(&finalize_path, Some(&json!({"csr": csr})))
            .await?
            .expect_status(StatusCode::OK)?;
        let order = response.json()?;
        let (valid, valid_replica) = if order["status"] == "valid" {
            (order, response.replica)
        } else {
            self.poll(&order_path, |status| status == "valid").await?
        };
        let certificate_url = valid["certificate"]
            .as_str()
            .context("a valid order without a certificate URL")?;
        let certificate_path = self.path_from(certificate_url, valid_replica)?;
        let chain_pem = self.download(certificate_url, valid_replica).await?;
        let order_id = order_path.rsplit('/').next().unwrap_or_default().to_owned();
        Ok(Issued {
            order_path,
            order_id,
            certificate_path,
            chain_pem,
        })
    }
}

/// A CSR for `names` with a fresh P-256 key (never the account key), as base64url DER.
pub fn csr_b64(names: &[&str]) -> Result<String> {
    let mut params = CertificateParams::new(
        names
            .iter()
            .map(|name| (*name).to_owned())
            .collect::<Vec<_>>(),
    )?;
    params.distinguished_name = DistinguishedName::new();
    let key = KeyPair::generate()?;
    let csr = params.serialize_request(&key)?;
    Ok(base64url(csr.der()))
}
