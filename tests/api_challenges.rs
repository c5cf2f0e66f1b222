//! In-process API tests for challenges and identifiers (issue 3): the offers per identifier
//! type, wildcards, IP identifiers, dns-01 through the fake resolver, authorization reuse,
//! newAuthz, one validation per authorization, and a slow target not blocking others.
//!
//! The router is driven with `oneshot`; time is a `FakeClock`, DNS a `FakeResolver`, storage an
//! in-memory SQLite database, and the CA is created in a temporary directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use mayfly::app::{App, AppState, Parts};
use mayfly::clock::FakeClock;
use mayfly::config::{Config, HumanDuration};
use mayfly::issuer::Issuer;
use mayfly::jose::{KeyRef, SigningKey, sign_jws};
use mayfly::validation::FakeResolver;
use mayfly::validation::dns01::digest;
use serde_json::{Value, json};
use tower::ServiceExt;

/// How long a test waits for a background validation to finish (real time).
const VALIDATION_WAIT: Duration = Duration::from_secs(10);

struct Harness {
    router: axum::Router,
    base: String,
    resolver: Arc<FakeResolver>,
    _data_dir: tempfile::TempDir,
}

/// An ACME client of the harness: a key, its account URL and the next nonce.
struct Client {
    key: SigningKey,
    kid: String,
    nonce: String,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Harness {
    /// `http01_port`: where http-01 connects; `timeout`: the bound on one validation;
    /// `answer_within`: how long a challenge POST waits for its validation.
    async fn new(
        http01_port: u16,
        timeout: HumanDuration,
        answer_within: HumanDuration,
    ) -> Harness {
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.server.data_dir = data_dir.path().to_owned();
        config.validation.http01_port = http01_port;
        config.validation.timeout = timeout;
        config.validation.answer_within = answer_within;
        mayfly::app::ensure_ca(&config, None).unwrap();
        let issuer = Issuer::load(data_dir.path(), None).unwrap();
        let store = mayfly::storage::connect("sqlite::memory:", 1)
            .await
            .unwrap();
        let resolver = FakeResolver::new();
        let parts = Parts {
            store,
            issuer: Arc::new(issuer),
            clock: Arc::new(FakeClock::new(time::OffsetDateTime::now_utc())),
            resolver: resolver.clone(),
        };
        let base = config.base_url();
        let app = App::assemble(config, parts).await.unwrap();
        Harness {
            router: mayfly::api::router(AppState(Arc::new(app))),
            base,
            resolver,
            _data_dir: data_dir,
        }
    }

    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        let request = Request::get(path).body(Body::empty()).unwrap();
        self.send(request).await
    }

    async fn fresh_nonce(&self) -> String {
        let answer = self.get("/acme/new-nonce").await;
        header(&answer.headers, "replay-nonce")
    }

    /// Signs and POSTs `payload` (`None`: POST-as-GET) to `url`, an absolute URL of the server.
    async fn post(&self, client: &mut Client, url: &str, payload: Option<Value>) -> Answer {
        let jws = sign_jws(
            &client.key,
            KeyRef::Kid(&client.kid),
            Some(&client.nonce),
            url,
            payload.as_ref(),
        );
        self.post_jws(client, url, jws).await
    }

    async fn post_jws(&self, client: &mut Client, url: &str, jws: Value) -> Answer {
        let path = url.strip_prefix(&self.base).unwrap();
        let request = Request::post(path)
            .header("content-type", "application/jose+json")
            .body(Body::from(jws.to_string()))
            .unwrap();
        let answer = self.send(request).await;
        client.nonce = header(&answer.headers, "replay-nonce");
        answer
    }

    async fn client(&self) -> Client {
        let key = SigningKey::generate_p256();
        let mut client = Client {
            key,
            kid: String::new(),
            nonce: self.fresh_nonce().await,
        };
        let url = format!("{}/acme/new-account", self.base);
        let jws = sign_jws(
            &client.key,
            KeyRef::Jwk,
            Some(&client.nonce),
            &url,
            Some(&json!({"termsOfServiceAgreed": true})),
        );
        let answer = self.post_jws(&mut client, &url, jws).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        client.kid = header(&answer.headers, "location");
        client
    }

    /// newOrder for `identifiers` (`(type, value)`); returns the order URL and body.
    async fn new_order(
        &self,
        client: &mut Client,
        identifiers: &[(&str, &str)],
    ) -> (String, Value) {
        let identifiers: Vec<Value> = identifiers
            .iter()
            .map(|(kind, value)| json!({"type": kind, "value": value}))
            .collect();
        let url = format!("{}/acme/new-order", self.base);
        let answer = self
            .post(client, &url, Some(json!({"identifiers": identifiers})))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        (header(&answer.headers, "location"), answer.body)
    }

    async fn fetch(&self, client: &mut Client, url: &str) -> Value {
        let answer = self.post(client, url, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{url}: {}", answer.body);
        answer.body
    }

    /// The first authorization of the order at `order`.
    async fn first_authz(&self, client: &mut Client, order: &Value) -> (String, Value) {
        let url = order["authorizations"][0].as_str().unwrap().to_owned();
        let body = self.fetch(client, &url).await;
        (url, body)
    }

    /// POST `{}` to the challenge of `kind` in `authz`; returns its URL and the answer.
    async fn respond(&self, client: &mut Client, authz: &Value, kind: &str) -> (String, Answer) {
        let url = challenge(authz, kind)["url"].as_str().unwrap().to_owned();
        let answer = self.post(client, &url, Some(json!({}))).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        (url, answer)
    }

    /// Polls the challenge until it is no longer pending or processing.
    async fn settled(&self, client: &mut Client, url: &str) -> Value {
        let deadline = Instant::now() + VALIDATION_WAIT;
        loop {
            let body = self.fetch(client, url).await;
            let status = body["status"].as_str().unwrap().to_owned();
            if status != "processing" && status != "pending" {
                return body;
            }
            assert!(Instant::now() < deadline, "{url} still {status}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Publishes the dns-01 answer for `name` (the base name for a wildcard).
    fn publish_txt(&self, client: &Client, name: &str, token: &str) {
        let key_authorization = format!("{token}.{}", client.key.jwk().thumbprint());
        self.resolver.set_txt(
            &format!("_acme-challenge.{name}"),
            vec![digest(&key_authorization)],
        );
    }
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_owned()
}

fn challenge<'a>(authz: &'a Value, kind: &str) -> &'a Value {
    authz["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} challenge in {authz}"))
}

fn challenge_types(authz: &Value) -> Vec<String> {
    authz["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap().to_owned())
        .collect()
}

/// Default harness: http-01 goes nowhere useful, validations are bounded by 5 s.
async fn harness() -> Harness {
    Harness::new(1, HumanDuration::seconds(5), HumanDuration::seconds(1)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_per_identifier_type() {
    let h = harness().await;
    let mut client = h.client().await;
    let cases: [(&str, &str, &str, Value, &[&str]); 4] = [
        (
            "DNS name",
            "dns",
            "www.offers.test",
            Value::Null,
            &["http-01", "dns-01", "tls-alpn-01"],
        ),
        ("wildcard", "dns", "*.offers.test", json!(true), &["dns-01"]),
        (
            "IPv4",
            "ip",
            "192.0.2.1",
            Value::Null,
            &["http-01", "tls-alpn-01"],
        ),
        (
            "IPv6",
            "ip",
            "2001:db8::1",
            Value::Null,
            &["http-01", "tls-alpn-01"],
        ),
    ];
    for (case, kind, value, wildcard, types) in cases {
        let (_, order) = h.new_order(&mut client, &[(kind, value)]).await;
        assert_eq!(order["status"], "pending", "{case}");
        // The order keeps the identifier as requested, `*.` included.
        assert_eq!(
            order["identifiers"],
            json!([{"type": kind, "value": value}]),
            "{case}"
        );
        let (_, authz) = h.first_authz(&mut client, &order).await;
        let base = value.strip_prefix("*.").unwrap_or(value);
        assert_eq!(
            authz["identifier"],
            json!({"type": kind, "value": base}),
            "{case}"
        );
        assert_eq!(authz["wildcard"], wildcard, "{case}");
        assert_eq!(authz["status"], "pending", "{case}");
        assert_eq!(challenge_types(&authz), types, "{case}");
        for c in authz["challenges"].as_array().unwrap() {
            assert_eq!(c["status"], "pending", "{case}");
            assert!(
                c["token"].as_str().unwrap().len() >= 43,
                "{case}: 256-bit token"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns01_success_makes_the_order_ready_and_a_wildcard_is_issued() {
    let h = harness().await;
    let mut client = h.client().await;
    let (order_url, order) = h
        .new_order(&mut client, &[("dns", "*.wild.test"), ("dns", "wild.test")])
        .await;
    for index in 0..2 {
        let url = order["authorizations"][index].as_str().unwrap().to_owned();
        let authz = h.fetch(&mut client, &url).await;
        let token = challenge(&authz, "dns-01")["token"]
            .as_str()
            .unwrap()
            .to_owned();
        // Both authorizations look at _acme-challenge.wild.test; they are validated one after
        // the other, so each finds its own digest there.
        h.publish_txt(&client, "wild.test", &token);
        let (chall_url, _) = h.respond(&mut client, &authz, "dns-01").await;
        let chall = h.settled(&mut client, &chall_url).await;
        assert_eq!(chall["status"], "valid", "{chall}");
        assert!(chall["validated"].is_string(), "{chall}");
        let authz = h.fetch(&mut client, &url).await;
        assert_eq!(authz["status"], "valid", "{authz}");
    }
    let order = h.fetch(&mut client, &order_url).await;
    assert_eq!(order["status"], "ready", "{order}");

    // Finalize with a CSR for both names: the certificate carries the wildcard.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["*.wild.test".to_owned(), "wild.test".to_owned()])
            .unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).unwrap();
    let finalize = order["finalize"].as_str().unwrap().to_owned();
    let csr = mayfly::jose::base64url(csr.der());
    let answer = h
        .post(&mut client, &finalize, Some(json!({"csr": csr})))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let deadline = Instant::now() + VALIDATION_WAIT;
    let order = loop {
        let order = h.fetch(&mut client, &order_url).await;
        if order["status"] != "processing" {
            break order;
        }
        assert!(Instant::now() < deadline, "order still processing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(order["status"], "valid", "{order}");
    let cert_url = order["certificate"].as_str().unwrap().to_owned();
    let answer = h.post(&mut client, &cert_url, None).await;
    assert_eq!(answer.status, StatusCode::OK);
    let pem = answer.body.as_str().unwrap().to_owned();
    let der = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .unwrap()
        .1
        .contents;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let mut names: Vec<String> = cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(name) => Some((*name).to_owned()),
            _ => None,
        })
        .collect();
    names.sort();
    assert_eq!(names, ["*.wild.test", "wild.test"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validation_that_passes_within_answer_within_is_answered_valid_a_failure_processing() {
    let h = harness().await;
    let mut client = h.client().await;
    let (order_url, order) = h.new_order(&mut client, &[("dns", "quick.test")]).await;
    let (authz_url, authz) = h.first_authz(&mut client, &order).await;
    let token = challenge(&authz, "dns-01")["token"]
        .as_str()
        .unwrap()
        .to_owned();
    h.publish_txt(&client, "quick.test", &token);
    let (_, answer) = h.respond(&mut client, &authz, "dns-01").await;
    assert_eq!(answer.body["status"], "valid", "{}", answer.body);
    assert!(answer.body["validated"].is_string(), "{}", answer.body);
    assert!(answer.headers.get("retry-after").is_none());
    // No poll needed: the authorization and the order have moved already.
    assert_eq!(h.fetch(&mut client, &authz_url).await["status"], "valid");
    assert_eq!(h.fetch(&mut client, &order_url).await["status"], "ready");

    // A quick failure is not answered with its outcome: clients such as instant-acme take an
    // `invalid` challenge in this answer for a failed request. The poll finds it.
    let (_, order) = h.new_order(&mut client, &[("dns", "wrong.test")]).await;
    let (authz_url, authz) = h.first_authz(&mut client, &order).await;
    h.resolver
        .set_txt("_acme-challenge.wrong.test", vec!["not-the-digest".into()]);
    let (url, answer) = h.respond(&mut client, &authz, "dns-01").await;
    assert_eq!(answer.body["status"], "processing", "{}", answer.body);
    assert!(answer.body.get("error").is_none(), "{}", answer.body);
    assert_eq!(header(&answer.headers, "retry-after"), "1");
    // The validation has already ended: the first poll sees it.
    let polled = h.fetch(&mut client, &url).await;
    assert_eq!(polled["status"], "invalid", "{polled}");
    assert_eq!(
        polled["error"]["type"],
        "urn:ietf:params:acme:error:incorrectResponse"
    );
    assert_eq!(h.fetch(&mut client, &authz_url).await["status"], "invalid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validation_slower_than_answer_within_is_answered_processing_and_goes_on() {
    let h = Harness::new(
        silent_target().await,
        HumanDuration::seconds(3),
        HumanDuration::seconds(1),
    )
    .await;
    h.resolver
        .insert("slow.test", vec!["127.0.0.1".parse().unwrap()]);
    let mut client = h.client().await;
    let (_, order) = h.new_order(&mut client, &[("dns", "slow.test")]).await;
    let (_, authz) = h.first_authz(&mut client, &order).await;
    let started = Instant::now();
    let (url, answer) = h.respond(&mut client, &authz, "http-01").await;
    let waited = started.elapsed();
    assert_eq!(answer.body["status"], "processing", "{}", answer.body);
    assert_eq!(header(&answer.headers, "retry-after"), "1");
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    // Dropping the wait did not stop the validation: it ends at its own timeout.
    let settled = h.settled(&mut client, &url).await;
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(settled["status"], "invalid", "{settled}");
    assert_eq!(
        settled["error"]["type"],
        "urn:ietf:params:acme:error:connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns01_wrong_txt_fails_the_challenge_the_authorization_and_the_order() {
    let h = harness().await;
    let mut client = h.client().await;
    let (order_url, order) = h.new_order(&mut client, &[("dns", "wrong.test")]).await;
    let (authz_url, authz) = h.first_authz(&mut client, &order).await;
    h.resolver
        .set_txt("_acme-challenge.wrong.test", vec!["not-the-digest".into()]);
    let (chall_url, _) = h.respond(&mut client, &authz, "dns-01").await;
    let chall = h.settled(&mut client, &chall_url).await;
    assert_eq!(chall["status"], "invalid", "{chall}");
    let error = &chall["error"];
    assert_eq!(
        error["type"], "urn:ietf:params:acme:error:incorrectResponse",
        "{error}"
    );
    assert_eq!(error["status"], 403, "{error}");
    assert_eq!(
        error["identifier"],
        json!({"type": "dns", "value": "wrong.test"})
    );
    let detail = error["detail"].as_str().unwrap();
    assert!(
        detail.contains("\"not-the-digest\"") && detail.contains("_acme-challenge.wrong.test"),
        "{detail}"
    );
    assert_eq!(h.fetch(&mut client, &authz_url).await["status"], "invalid");
    assert_eq!(h.fetch(&mut client, &order_url).await["status"], "invalid");
    // The other challenges can no longer be answered.
    let url = challenge(&authz, "http-01")["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = h.post(&mut client, &url, Some(json!({}))).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert_eq!(answer.body["type"], "urn:ietf:params:acme:error:malformed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns01_problems_name_the_cause() {
    let h = harness().await;
    let mut client = h.client().await;
    h.resolver.set_txt("_acme-challenge.empty.test", vec![]);
    let cases = [
        ("NXDOMAIN", "nx.test", "dns", "NXDOMAIN"),
        (
            "no TXT record",
            "empty.test",
            "unauthorized",
            "no TXT record found",
        ),
    ];
    for (case, name, kind, text) in cases {
        let (_, order) = h.new_order(&mut client, &[("dns", name)]).await;
        let (_, authz) = h.first_authz(&mut client, &order).await;
        let (chall_url, _) = h.respond(&mut client, &authz, "dns-01").await;
        let chall = h.settled(&mut client, &chall_url).await;
        assert_eq!(chall["status"], "invalid", "{case}");
        assert_eq!(
            chall["error"]["type"],
            format!("urn:ietf:params:acme:error:{kind}"),
            "{case}: {chall}"
        );
        let detail = chall["error"]["detail"].as_str().unwrap();
        assert!(detail.contains(text), "{case}: {detail}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_authorizations_are_reused() {
    let h = harness().await;
    let mut client = h.client().await;
    let (_, first) = h.new_order(&mut client, &[("dns", "reuse.test")]).await;
    let (authz_url, authz) = h.first_authz(&mut client, &first).await;
    let token = challenge(&authz, "dns-01")["token"]
        .as_str()
        .unwrap()
        .to_owned();
    h.publish_txt(&client, "reuse.test", &token);
    let (chall_url, _) = h.respond(&mut client, &authz, "dns-01").await;
    assert_eq!(h.settled(&mut client, &chall_url).await["status"], "valid");

    // The same account and name: the valid authorization is linked, the order ready at once.
    let (_, second) = h.new_order(&mut client, &[("dns", "reuse.test")]).await;
    assert_eq!(second["status"], "ready", "{second}");
    assert_eq!(second["authorizations"], json!([authz_url]));
    // It expires no later than the authorization it relies on.
    let authz = h.fetch(&mut client, &authz_url).await;
    assert!(second["expires"].as_str().unwrap() <= authz["expires"].as_str().unwrap());

    // A wildcard of the same name is another authorization.
    let (_, wildcard) = h.new_order(&mut client, &[("dns", "*.reuse.test")]).await;
    assert_eq!(wildcard["status"], "pending");
    assert_ne!(wildcard["authorizations"][0], json!(authz_url));

    // Mixed: one reused, one new, in the order of the identifiers.
    let (_, mixed) = h
        .new_order(
            &mut client,
            &[("dns", "new.reuse.test"), ("dns", "reuse.test")],
        )
        .await;
    assert_eq!(mixed["status"], "pending");
    assert_eq!(mixed["authorizations"][1], json!(authz_url));
    assert_ne!(mixed["authorizations"][0], json!(authz_url));

    // Another account gets its own.
    let mut other = h.client().await;
    let (_, theirs) = h.new_order(&mut other, &[("dns", "reuse.test")]).await;
    assert_eq!(theirs["status"], "pending");
    assert_ne!(theirs["authorizations"][0], json!(authz_url));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_authz_pre_authorizes() {
    let h = harness().await;
    let directory = h.get("/directory").await;
    let new_authz = directory.body["newAuthz"].as_str().unwrap().to_owned();
    assert_eq!(new_authz, format!("{}/acme/new-authz", h.base));

    let mut client = h.client().await;
    let answer = h
        .post(
            &mut client,
            &new_authz,
            Some(json!({"identifier": {"type": "dns", "value": "Pre.Test"}})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let authz_url = header(&answer.headers, "location");
    let authz = answer.body;
    assert_eq!(authz["status"], "pending");
    assert_eq!(
        authz["identifier"],
        json!({"type": "dns", "value": "pre.test"})
    );
    assert_eq!(
        challenge_types(&authz),
        ["http-01", "dns-01", "tls-alpn-01"]
    );
    assert_eq!(h.fetch(&mut client, &authz_url).await, authz);

    // Once valid, an order for the name uses it and is ready at once.
    let token = challenge(&authz, "dns-01")["token"]
        .as_str()
        .unwrap()
        .to_owned();
    h.publish_txt(&client, "pre.test", &token);
    let (chall_url, _) = h.respond(&mut client, &authz, "dns-01").await;
    assert_eq!(h.settled(&mut client, &chall_url).await["status"], "valid");
    let (_, order) = h.new_order(&mut client, &[("dns", "pre.test")]).await;
    assert_eq!(order["status"], "ready", "{order}");
    assert_eq!(order["authorizations"], json!([authz_url]));
    // A second newAuthz returns the valid one.
    let again = h
        .post(
            &mut client,
            &new_authz,
            Some(json!({"identifier": {"type": "dns", "value": "pre.test"}})),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(header(&again.headers, "location"), authz_url);
    assert_eq!(again.body["status"], "valid");

    // IP addresses may be pre-authorized.
    let ip = h
        .post(
            &mut client,
            &new_authz,
            Some(json!({"identifier": {"type": "ip", "value": "192.0.2.9"}})),
        )
        .await;
    assert_eq!(ip.status, StatusCode::CREATED, "{}", ip.body);
    assert_eq!(challenge_types(&ip.body), ["http-01", "tls-alpn-01"]);

    // Wildcards may not.
    let wildcard = h
        .post(
            &mut client,
            &new_authz,
            Some(json!({"identifier": {"type": "dns", "value": "*.pre.test"}})),
        )
        .await;
    assert_eq!(
        wildcard.status,
        StatusCode::BAD_REQUEST,
        "{}",
        wildcard.body
    );
    assert_eq!(
        wildcard.body["type"],
        "urn:ietf:params:acme:error:rejectedIdentifier"
    );
    assert_eq!(
        wildcard.body["identifier"],
        json!({"type": "dns", "value": "*.pre.test"})
    );
    let bad = h
        .post(
            &mut client,
            &new_authz,
            Some(json!({"identifier": {"type": "email", "value": "a@b.test"}})),
        )
        .await;
    assert_eq!(
        bad.body["type"],
        "urn:ietf:params:acme:error:unsupportedIdentifier"
    );
}

/// A TCP listener that accepts connections and never answers; returns its port.
async fn silent_target() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_target_does_not_block_other_validations_nor_a_second_challenge() {
    // The answer does not wait, so the test sees the validation running.
    let h = Harness::new(
        silent_target().await,
        HumanDuration::seconds(2),
        HumanDuration::seconds(0),
    )
    .await;
    h.resolver
        .insert("slow.test", vec!["127.0.0.1".parse().unwrap()]);
    let mut client = h.client().await;
    let (slow_order_url, slow_order) = h.new_order(&mut client, &[("dns", "slow.test")]).await;
    let (slow_authz_url, slow_authz) = h.first_authz(&mut client, &slow_order).await;
    let started = Instant::now();
    let (slow_url, answer) = h.respond(&mut client, &slow_authz, "http-01").await;
    assert_eq!(answer.body["status"], "processing");
    assert_eq!(header(&answer.headers, "retry-after"), "1");

    // Another challenge of the same authorization is not validated while one is processing.
    let (dns_url, answer) = h.respond(&mut client, &slow_authz, "dns-01").await;
    assert_eq!(answer.body["status"], "pending", "{}", answer.body);

    // A healthy validation of another order finishes meanwhile.
    let (_, fast_order) = h.new_order(&mut client, &[("dns", "fast.test")]).await;
    let (_, fast_authz) = h.first_authz(&mut client, &fast_order).await;
    let token = challenge(&fast_authz, "dns-01")["token"]
        .as_str()
        .unwrap()
        .to_owned();
    h.publish_txt(&client, "fast.test", &token);
    let (fast_url, _) = h.respond(&mut client, &fast_authz, "dns-01").await;
    assert_eq!(h.settled(&mut client, &fast_url).await["status"], "valid");
    assert_eq!(
        h.fetch(&mut client, &slow_url).await["status"],
        "processing",
        "the slow validation should still be running"
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    // The slow one ends at the timeout, with a connection problem.
    let slow = h.settled(&mut client, &slow_url).await;
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(slow["status"], "invalid");
    assert_eq!(
        slow["error"]["type"],
        "urn:ietf:params:acme:error:connection"
    );
    let detail = slow["error"]["detail"].as_str().unwrap();
    // The HTTP client's own timeout (the same bound) usually fires first.
    assert!(
        detail.ends_with(": timeout") || detail.contains("did not finish within 2 s"),
        "{detail}"
    );
    assert_eq!(h.fetch(&mut client, &dns_url).await["status"], "pending");
    assert_eq!(
        h.fetch(&mut client, &slow_authz_url).await["status"],
        "invalid"
    );
    assert_eq!(
        h.fetch(&mut client, &slow_order_url).await["status"],
        "invalid"
    );
}
