//! instant-acme, in process: account, order, http-01 from a tiny local HTTP server, CSR made
//! with rcgen, and the chain downloaded.
//!
//! The HTTPS client trusts only the target's root, through `Account::builder_with_root`
//! (which builds a rustls `RootCertStore` holding just that certificate).

use std::collections::HashMap;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use rcgen::{CertificateParams, DistinguishedName, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Polling for the order: a fixed 250 ms interval, bounded by one minute.
const POLL: RetryPolicy = RetryPolicy::new()
    .initial_delay(Duration::from_millis(250))
    .backoff(1.0)
    .timeout(Duration::from_secs(60));
/// The largest request head the challenge server reads; a validation GET is far smaller.
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// How long the challenge server waits for a request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
const CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// The issued chain and the challenge requests the server made.
#[derive(Debug)]
pub struct Issued {
    /// Full chain PEM, leaf first.
    pub fullchain: PathBuf,
    /// The request paths the local http-01 server answered.
    pub challenge_requests: Vec<String>,
}

/// Obtain a certificate for `name`, writing the chain and key under `work_dir`.
pub async fn issue(target: &crate::AcmeTarget, name: &str, work_dir: &Path) -> Result<Issued> {
    crate::install_crypto_provider();
    let (account, _credentials) = Account::builder_with_root(&target.tls_root)?
        .create(
            &NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            target.directory_url.clone(),
            None,
        )
        .await
        .context("creating the account")?;

    let identifiers = [Identifier::Dns(name.to_owned())];
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .context("creating the order")?;

    let server = ChallengeServer::start(target.http01_port).await?;
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization.context("fetching an authorization")?;
        match authorization.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            status => bail!("authorization is {status:?}, expected pending"),
        }
        let mut challenge = authorization
            .challenge(ChallengeType::Http01)
            .ok_or_else(|| anyhow!("no http-01 challenge offered"))?;
        server.provision(&challenge.token, challenge.key_authorization().as_str());
        challenge
            .set_ready()
            .await
            .context("responding to the challenge")?;
    }

    let status = order.poll_ready(&POLL).await.context("waiting for ready")?;
    if status != OrderStatus::Ready {
        bail!("order is {status:?}, expected ready");
    }

    let mut params = CertificateParams::new(vec![name.to_owned()])?;
    params.distinguished_name = DistinguishedName::new();
    let key = KeyPair::generate()?;
    let csr = params.serialize_request(&key)?;
    order.finalize_csr(csr.der()).await.context("finalizing")?;
    let chain = order
        .poll_certificate(&POLL)
        .await
        .context("downloading the certificate")?;

    let fullchain = work_dir.join("fullchain.pem");
    fs::write(&fullchain, chain)?;
    fs::write(work_dir.join("privkey.pem"), key.serialize_pem())?;
    Ok(Issued {
        fullchain,
        challenge_requests: server.requests(),
    })
}

/// A minimal HTTP/1.1 server answering `GET /.well-known/acme-challenge/<token>`.
///
/// Stops when dropped. Public so that other in-process clients (the replica test's
/// hand-rolled client) can serve http-01 the same way.
pub struct ChallengeServer {
    responses: Arc<Mutex<HashMap<String, String>>>,
    requests: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl ChallengeServer {
    /// Listen on `127.0.0.1:port`.
    pub async fn start(port: u16) -> Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .with_context(|| format!("binding the http-01 server to 127.0.0.1:{port}"))?;
        let responses = Arc::new(Mutex::new(HashMap::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(accept_loop(listener, responses.clone(), requests.clone()));
        Ok(Self {
            responses,
            requests,
            task,
        })
    }

    /// Answer `GET /.well-known/acme-challenge/<token>` with `key_authorization`.
    pub fn provision(&self, token: &str, key_authorization: &str) {
        lock(&self.responses).insert(token.to_owned(), key_authorization.to_owned());
    }

    /// The request paths answered so far.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.requests).clone()
    }
}

impl Drop for ChallengeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A poisoned lock only means another connection task panicked; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn accept_loop(
    listener: TcpListener,
    responses: Arc<Mutex<HashMap<String, String>>>,
    requests: Arc<Mutex<Vec<String>>>,
) {
    while let Ok((stream, _)) = listener.accept().await {
        let responses = responses.clone();
        let requests = requests.clone();
        tokio::spawn(async move {
            let _ = answer(stream, &responses, &requests).await;
        });
    }
}

async fn answer(
    mut stream: TcpStream,
    responses: &Mutex<HashMap<String, String>>,
    requests: &Mutex<Vec<String>>,
) -> Result<()> {
    let head = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await??;
    let request_line = head.lines().next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    lock(requests).push(path.to_owned());
    let body = path
        .strip_prefix(CHALLENGE_PREFIX)
        .filter(|_| method == "GET")
        .and_then(|token| lock(responses).get(token).cloned());
    let response = match body {
        Some(body) => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
        None => {
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
        }
    };
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await?;
    Ok(())
}

async fn read_head(stream: &mut TcpStream) -> Result<String> {
    let mut head = Vec::new();
    let mut buffer = [0; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        if head.len() > MAX_REQUEST_HEAD {
            bail!("request head over {MAX_REQUEST_HEAD} bytes");
        }
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            bail!("connection closed before the end of the request head");
        }
        head.extend_from_slice(&buffer[..read]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}
