//! The in-process test harness: a whole Mayfly app (SQLite in a temporary directory, a fresh
//! CA, a `FakeClock`, a `FakeResolver`) behind its router, a loopback http-01 target, and a
//! small ACME client that drives the router with `oneshot`, so tests read top-down.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod oidc_idp;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::BodyExt;
use mayfly::app::{App, AppState, Parts};
use mayfly::clock::FakeClock;
use mayfly::config::Config;
use mayfly::issuer::{CaOptions, Issuer, KeyType, init_ca};
use mayfly::jose::{KeyRef, SigningKey, key_authorization, sign_jws};
use mayfly::validation::FakeResolver;
use serde_json::{Value, json};
use tempfile::TempDir;
use time::{Duration, OffsetDateTime};
use tower::ServiceExt;

/// The default base URL (`https://` + the default listen address).
pub const BASE: &str = "https://127.0.0.1:14000";
/// A name the fake resolver maps to the loopback challenge server.
pub const NAME: &str = "a.example.com";
pub const JOSE: &str = "application/jose+json";
pub const PROBLEM: &str = "application/problem+json";

/// The URN of an ACME error type.
pub fn urn(code: &str) -> String {
    format!("urn:ietf:params:acme:error:{code}")
}

/// The path of one of the server's URLs (the router sees paths, clients see URLs).
pub fn path_of(url: &str) -> &str {
    url.strip_prefix(BASE)
        .unwrap_or_else(|| panic!("{url} is not under {BASE}"))
}

/// What the http-01 target answers for a token: a status and a body.
type Answers = Arc<Mutex<HashMap<String, (StatusCode, String)>>>;

/// A whole CA in one process.
pub struct TestCa {
    pub router: Router,
    /// The plain-HTTP CRL listener's router.
    pub crl_router: Router,
    pub clock: Arc<FakeClock>,
    pub resolver: Arc<FakeResolver>,
    pub issuer: Arc<Issuer>,
    /// The app's database (a test may close it: a database that went away).
    pub store: Arc<dyn mayfly::storage::Store>,
    /// The app behind the routers, for what runs beside them (the admin API's router, the
    /// periodic jobs, flushing and reading the audit log).
    pub state: AppState,
    /// Tokens the http-01 target knows; any other token gets 404.
    answers: Answers,
    _dir: TempDir,
}

/// An ACME account as a client holds it.
pub struct Account {
    pub key: SigningKey,
    /// The account URL, used as `kid`.
    pub url: String,
}

/// A response, with its body read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} body is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn location(&self) -> String {
        self.header("location")
            .expect("a Location header")
            .to_owned()
    }

    /// Asserts a success status and returns the JSON body.
    pub fn expect_json(&self, status: StatusCode) -> Value {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
        self.json()
    }

    /// Asserts an RFC 7807 problem of type `code` with HTTP `status` (the body's `status`
    /// member too) and returns the body. Only the members ACME defines may appear.
    pub fn expect_problem(&self, status: u16, code: &str) -> Value {
        let body = String::from_utf8_lossy(&self.body).into_owned();
        assert_eq!(self.status.as_u16(), status, "status; body: {body}");
        assert_eq!(self.header("content-type"), Some(PROBLEM), "body: {body}");
        let problem = self.json();
        assert_eq!(problem["type"], json!(urn(code)), "body: {body}");
        assert_eq!(problem["status"], json!(status), "body: {body}");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(!detail.is_empty(), "a problem explains itself: {body}");
        for member in problem.as_object().unwrap().keys() {
            assert!(
                [
                    "type",
                    "detail",
                    "status",
                    "identifier",
                    "subproblems",
                    "algorithms"
                ]
                .contains(&member.as_str()),
                "unexpected member {member:?}: {body}"
            );
        }
        problem
    }

    /// `expect_problem` plus the exact `detail`.
    pub fn expect_problem_detail(&self, status: u16, code: &str, detail: &str) -> Value {
        let problem = self.expect_problem(status, code);
        assert_eq!(problem["detail"], json!(detail));
        problem
    }
}

impl TestCa {
    /// A CA with the default configuration; the clock starts at the current second.
    pub async fn new() -> TestCa {
        Self::with_config(Config::default()).await
    }

    pub async fn with_config(mut config: Config) -> TestCa {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let answers: Answers = Arc::default();
        config.validation.http01_port = challenge_server(answers.clone()).await;
        config.validation.timeout = mayfly::config::HumanDuration(Duration::seconds(3));

        let dir = tempfile::tempdir().unwrap();
        let options = CaOptions {
            key_type: KeyType::P256,
            root_common_name: "Test Root".into(),
            intermediate_common_name: "Test Intermediate".into(),
            root_validity: Duration::days(3650),
            intermediate_validity: Duration::days(365),
        };
        init_ca(dir.path(), &options, None).unwrap();
        let issuer = Arc::new(Issuer::load(dir.path(), None).unwrap());
        let url = format!("sqlite://{}/t.db?mode=rwc", dir.path().display());
        let store = mayfly::storage::connect(&url, 4).await.unwrap();
        let clock = Arc::new(FakeClock::new(OffsetDateTime::now_utc()));
        let resolver = FakeResolver::new();
        resolver.insert(NAME, vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        resolver.insert("b.example.com", vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        let parts = Parts {
            store: store.clone(),
            issuer: issuer.clone(),
            clock: clock.clone(),
            resolver: resolver.clone(),
        };
        let app = App::assemble(config, parts).await.unwrap();
        let state = AppState(Arc::new(app));
        let crl_router = mayfly::api::crl::router(state.clone());
        let router = mayfly::api::router(state.clone());
        TestCa {
            state,
            router,
            crl_router,
            clock,
            resolver,
            issuer,
            store,
            answers,
            _dir: dir,
        }
    }

    /// The database the app runs on, for a second connection (as `mayfly admin` opens one).
    pub fn database_url(&self) -> String {
        format!("sqlite://{}/t.db?mode=rwc", self._dir.path().display())
    }

    /// The FakeClock's time.
    pub fn now(&self) -> OffsetDateTime {
        use mayfly::clock::Clock as _;
        self.clock.now()
    }

    // -----------------------------------------------------------------------------------------
    // Raw HTTP

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn request(&self, method: Method, path: &str) -> Reply {
        self.send(
            Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    /// A POST with any content type and body.
    pub async fn post_bytes(&self, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
        self.send(
            Request::builder()
                .method(Method::POST)
                .uri(path)
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    pub async fn post_jws(&self, path: &str, jws: &Value) -> Reply {
        self.post_bytes(path, JOSE, jws.to_string().into_bytes())
            .await
    }

    /// A fresh nonce from HEAD newNonce.
    pub async fn nonce(&self) -> String {
        let reply = self.request(Method::HEAD, "/acme/new-nonce").await;
        assert_eq!(reply.status, StatusCode::OK);
        reply.header("replay-nonce").expect("a nonce").to_owned()
    }

    /// Signs `payload` (None: POST-as-GET) for `path` with a fresh nonce and sends it.
    pub async fn post(
        &self,
        key: &SigningKey,
        key_ref: KeyRef<'_>,
        path: &str,
        payload: Option<&Value>,
    ) -> Reply {
        let nonce = self.nonce().await;
        let jws = sign_jws(key, key_ref, Some(&nonce), &url(path), payload);
        self.post_jws(path, &jws).await
    }

    // -----------------------------------------------------------------------------------------
    // The ACME client

    /// newAccount with a fresh P-256 key; asserts 201.
    pub async fn new_account(&self) -> Account {
        let key = SigningKey::generate_p256();
        let reply = self
            .post(&key, KeyRef::Jwk, "/acme/new-account", Some(&json!({})))
            .await;
        let body = reply.expect_json(StatusCode::CREATED);
        assert_eq!(body["status"], "valid");
        Account {
            key,
            url: reply.location(),
        }
    }

    /// A request signed by `account` (kid) to the URL or path `target`.
    pub async fn account_post(
        &self,
        account: &Account,
        target: &str,
        payload: Option<&Value>,
    ) -> Reply {
        let path = target.strip_prefix(BASE).unwrap_or(target);
        self.post(&account.key, KeyRef::Kid(&account.url), path, payload)
            .await
    }

    pub async fn post_as_get(&self, account: &Account, target: &str) -> Reply {
        self.account_post(account, target, None).await
    }

    /// newOrder for DNS names; returns the raw reply.
    pub async fn new_order_reply(&self, account: &Account, names: &[&str]) -> Reply {
        let identifiers: Vec<Value> = names
            .iter()
            .map(|n| json!({"type": "dns", "value": n}))
            .collect();
        self.account_post(
            account,
            "/acme/new-order",
            Some(&json!({ "identifiers": identifiers })),
        )
        .await
    }

    /// newOrder for DNS names; asserts 201 and returns (order URL, order).
    pub async fn new_order(&self, account: &Account, names: &[&str]) -> (String, Value) {
        let reply = self.new_order_reply(account, names).await;
        let order = reply.expect_json(StatusCode::CREATED);
        (reply.location(), order)
    }

    /// POST-as-GET of a JSON resource; asserts 200.
    pub async fn fetch(&self, account: &Account, url: &str) -> Value {
        self.post_as_get(account, url)
            .await
            .expect_json(StatusCode::OK)
    }

    /// The first authorization of an order and its http-01 challenge.
    pub async fn first_challenge(&self, account: &Account, order: &Value) -> (String, Value) {
        let authz_url = order["authorizations"][0].as_str().unwrap().to_owned();
        let authz = self.fetch(account, &authz_url).await;
        let challenge = authz["challenges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "http-01")
            .expect("an http-01 challenge")
            .clone();
        (authz_url, challenge)
    }

    /// Makes the http-01 target answer `token` with `status` and `body`.
    pub fn serve(&self, token: &str, status: StatusCode, body: &str) {
        self.answers
            .lock()
            .unwrap()
            .insert(token.to_owned(), (status, body.to_owned()));
    }

    /// Makes the http-01 target answer `token` with the right key authorization.
    pub fn serve_key_authorization(&self, account: &Account, token: &str) {
        let body = key_authorization(token, &account.key.jwk());
        self.serve(token, StatusCode::OK, &body);
    }

    /// POSTs `{}` to a challenge; asserts 200 and returns the challenge.
    pub async fn respond(&self, account: &Account, challenge_url: &str) -> Value {
        self.account_post(account, challenge_url, Some(&json!({})))
            .await
            .expect_json(StatusCode::OK)
    }

    /// Polls a challenge until it leaves pending/processing; gives up after 5 s.
    pub async fn poll_challenge(&self, account: &Account, challenge_url: &str) -> Value {
        for _ in 0..100 {
            let challenge = self.fetch(account, challenge_url).await;
            if challenge["status"] != "pending" && challenge["status"] != "processing" {
                return challenge;
            }
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
        panic!("challenge {challenge_url} did not finish within 5 s");
    }

    /// newOrder, answer every challenge correctly, wait: returns (order URL, ready order).
    pub async fn ready_order(&self, account: &Account, names: &[&str]) -> (String, Value) {
        let (order_url, order) = self.new_order(account, names).await;
        for authz_url in order["authorizations"].as_array().unwrap() {
            let authz = self.fetch(account, authz_url.as_str().unwrap()).await;
            let challenge = &authz["challenges"][0];
            self.serve_key_authorization(account, challenge["token"].as_str().unwrap());
            let url = challenge["url"].as_str().unwrap();
            self.respond(account, url).await;
            let done = self.poll_challenge(account, url).await;
            assert_eq!(done["status"], "valid", "{done}");
        }
        let order = self.fetch(account, &order_url).await;
        assert_eq!(order["status"], "ready", "{order}");
        (order_url, order)
    }

    /// Sends a finalize request with a CSR (DER).
    pub async fn finalize(&self, account: &Account, order: &Value, csr_der: &[u8]) -> Reply {
        let csr = URL_SAFE_NO_PAD.encode(csr_der);
        self.account_post(
            account,
            order["finalize"].as_str().unwrap(),
            Some(&json!({ "csr": csr })),
        )
        .await
    }
}

/// The URL a request to `path` must sign.
pub fn url(path: &str) -> String {
    format!("{BASE}{path}")
}

/// A CSR (DER) for DNS `names`, signed by `key`.
pub fn csr_with(key: &rcgen::KeyPair, names: &[&str]) -> Vec<u8> {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = rcgen::CertificateParams::new(names).unwrap();
    // No subject: the names are in the SANs only (rcgen's default CN is a placeholder).
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.serialize_request(key).unwrap().der().to_vec()
}

/// A CSR (DER) for DNS `names` with a fresh P-256 key.
pub fn csr(names: &[&str]) -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    csr_with(&key, names)
}

/// The certificates in a PEM chain, as DER.
pub fn pem_certificates(pem: &[u8]) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(pem)
        .map(|p| {
            let p = p.unwrap();
            assert_eq!(p.label, "CERTIFICATE");
            p.contents
        })
        .collect()
}

/// A loopback http-01 target; returns its port.
async fn challenge_server(answers: Answers) -> u16 {
    async fn answer(
        State(answers): State<Answers>,
        Path(token): Path<String>,
    ) -> axum::response::Response {
        match answers.lock().unwrap().get(&token) {
            Some((status, body)) => (*status, body.clone()).into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        }
    }
    let app = Router::new()
        .route(
            "/.well-known/acme-challenge/{token}",
            axum::routing::get(answer),
        )
        .with_state(answers);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    port
}
