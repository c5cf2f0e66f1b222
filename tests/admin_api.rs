//! The admin API (issue 7) over its real TLS listener, in process: refused without a client
//! certificate (handshake) and with a non-admin certificate from the same CA (403), admitted
//! with a bootstrap certificate; every endpoint's success and error shapes; pagination.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use axum::http::StatusCode;
use mayfly::config::Config;
use mayfly::issuer::serial_hex;
use serde_json::{Value, json};
use support::{Account, NAME, TestCa, csr_with, pem_certificates};
use time::Duration;
use x509_parser::prelude::{FromDer, X509Certificate};

const PROBLEM: &str = "application/problem+json";

/// A TestCa with its admin listener on a loopback port.
struct Admin {
    ca: TestCa,
    base: String,
    /// A client holding a bootstrap (admin) certificate.
    admin: reqwest::Client,
    handle: axum_server::Handle<std::net::SocketAddr>,
    _dir: tempfile::TempDir,
}

impl Drop for Admin {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// A leaf (PEM chain + key) issued to an ACME client.
struct Issued {
    serial: String,
    identity_pem: String,
}

impl Admin {
    async fn start(config: Config) -> Admin {
        let ca = TestCa::with_config(config).await;
        let dir = tempfile::tempdir().unwrap();
        let (chain, key) = ca
            .issuer
            .ensure_server_certificate(dir.path(), &[], ca.now())
            .unwrap();
        let tls = mayfly::server::admin::config(&chain, &key, ca.issuer.root_pem()).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("https://{}", listener.local_addr().unwrap());
        let handle = axum_server::Handle::new();
        tokio::spawn(mayfly::server::admin::serve(
            ca.state.clone(),
            listener,
            tls,
            handle.clone(),
        ));
        let credential = ca
            .issuer
            .issue_admin_certificate("ops-test", ca.now(), Duration::days(1))
            .unwrap();
        let admin = client(
            &ca,
            Some(&format!("{}{}", credential.chain_pem, credential.key_pem)),
        );
        Admin {
            ca,
            base,
            admin,
            handle,
            _dir: dir,
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .admin
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        read(response).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .admin
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        read(response).await
    }

    /// Asserts a problem document of `urn:mayfly:admin:error:<code>` with status `status`.
    async fn problem(&self, path: &str, body: Option<Value>, status: u16, code: &str) -> String {
        let request = match body {
            Some(body) => self.admin.post(format!("{}{path}", self.base)).json(&body),
            None => self.admin.get(format!("{}{path}", self.base)),
        };
        let response = request.send().await.unwrap();
        assert_eq!(
            response.headers()["content-type"],
            PROBLEM,
            "{path}: content type"
        );
        let (got, problem) = read(response).await;
        assert_eq!(got.as_u16(), status, "{path}: {problem}");
        assert_eq!(problem["type"], format!("urn:mayfly:admin:error:{code}"));
        assert_eq!(problem["status"], status);
        problem["detail"].as_str().unwrap().to_owned()
    }

    /// An ACME certificate for `names` with the default profile of the CA's configuration.
    async fn issue(&self, account: &Account, names: &[&str]) -> Issued {
        let ca = &self.ca;
        let (_, order) = ca.ready_order(account, names).await;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let order = ca
            .finalize(account, &order, &csr_with(&key, names))
            .await
            .expect_json(StatusCode::OK);
        let chain = ca
            .post_as_get(account, order["certificate"].as_str().unwrap())
            .await;
        assert_eq!(chain.status, StatusCode::OK);
        let der = pem_certificates(&chain.body).remove(0);
        let serial = serial_hex(X509Certificate::from_der(&der).unwrap().1.raw_serial());
        Issued {
            serial,
            identity_pem: format!(
                "{}{}",
                String::from_utf8_lossy(&chain.body),
                key.serialize_pem()
            ),
        }
    }
}

/// A client trusting the CA's root, presenting `identity_pem` (chain + key) if given.
fn client(ca: &TestCa, identity_pem: Option<&str>) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(ca.issuer.root_pem().as_bytes()).unwrap();
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([root])
        .timeout(std::time::Duration::from_secs(10));
    if let Some(pem) = identity_pem {
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn tlsclient_default() -> Config {
    let mut config = Config::default();
    config.profiles.default = "tlsclient".into();
    config
}

// ---------------------------------------------------------------------------------------------
// Who may call

#[tokio::test]
async fn a_client_without_a_certificate_is_refused_during_the_handshake() {
    let admin = Admin::start(Config::default()).await;
    let error = client(&admin.ca, None)
        .get(format!("{}/admin/status", admin.base))
        .send()
        .await
        .expect_err("no response without a client certificate");
    assert!(error.is_connect() || error.is_request(), "{error:?}");
}

#[tokio::test]
async fn an_acme_server_certificate_of_the_same_ca_is_refused_during_the_handshake() {
    let admin = Admin::start(Config::default()).await;
    let account = admin.ca.new_account().await;
    // The default profile issues serverAuth only: no client certificate for the handshake.
    let issued = admin.issue(&account, &[NAME]).await;
    let error = client(&admin.ca, Some(&issued.identity_pem))
        .get(format!("{}/admin/status", admin.base))
        .send()
        .await
        .expect_err("a serverAuth leaf is no client certificate");
    assert!(error.is_connect() || error.is_request(), "{error:?}");
}

#[tokio::test]
async fn an_acme_client_certificate_of_the_same_ca_gets_403_and_no_data() {
    let admin = Admin::start(tlsclient_default()).await;
    let account = admin.ca.new_account().await;
    let issued = admin.issue(&account, &[NAME]).await;
    let stranger = client(&admin.ca, Some(&issued.identity_pem));
    for path in ["/admin/status", "/admin/certificates", "/admin/ca"] {
        let response = stranger
            .get(format!("{}{path}", admin.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 403, "{path}");
        assert_eq!(response.headers()["content-type"], PROBLEM);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({
                "type": "urn:mayfly:admin:error:forbidden",
                "title": "Not an admin",
                "status": 403,
                "detail": "the client certificate does not carry Mayfly's admin role; use a certificate made by `mayfly admin bootstrap`",
            })
        );
    }
    let response = stranger
        .post(format!(
            "{}/admin/certificates/{}/revoke",
            admin.base, issued.serial
        ))
        .json(&json!({"reason": "keyCompromise"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let (_, cert) = admin
        .get(&format!("/admin/certificates/{}", issued.serial))
        .await;
    assert_eq!(cert["status"], "active", "a refused caller changed nothing");
}

#[tokio::test]
async fn the_bootstrap_certificate_is_admitted() {
    let admin = Admin::start(Config::default()).await;
    let (status, body) = admin.get("/admin/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["root"]["sha256_fingerprint"],
        admin.ca.issuer.root_fingerprint()
    );
    assert_eq!(
        body["certificates"],
        json!({"issued": 0, "active": 0, "expired": 0, "revoked": 0})
    );
    assert_eq!(body["accounts"], 0);
    admin
        .problem("/admin/nothing-here", None, 404, "notFound")
        .await;
    let detail = admin
        .problem("/admin/status", Some(json!({})), 405, "methodNotAllowed")
        .await;
    assert_eq!(
        detail,
        "POST is not allowed on /admin/status; see /admin/openapi.json"
    );
}

// ---------------------------------------------------------------------------------------------
// Endpoints

#[tokio::test]
async fn status_counts_active_expired_and_revoked_by_the_clock() {
    let admin = Admin::start(Config::default()).await;
    let account = admin.ca.new_account().await;
    let first = admin.issue(&account, &[NAME]).await;
    admin.issue(&account, &["b.example.com"]).await;
    let (status, _) = admin
        .post(
            &format!("/admin/certificates/{}/revoke", first.serial),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = admin.get("/admin/status").await;
    assert_eq!(
        body["certificates"],
        json!({"issued": 2, "active": 1, "expired": 0, "revoked": 1})
    );
    assert_eq!(body["accounts"], 1);
    // The default profile lasts 24 hours (`hours`): two days on, the other one has expired.
    admin.ca.clock.advance(Duration::days(2));
    let (_, body) = admin.get("/admin/status").await;
    assert_eq!(
        body["certificates"],
        json!({"issued": 2, "active": 0, "expired": 1, "revoked": 1})
    );
}

#[tokio::test]
async fn certificates_filter_by_name_account_status_and_expiry() {
    let admin = Admin::start(Config::default()).await;
    let alice = admin.ca.new_account().await;
    let bob = admin.ca.new_account().await;
    let a = admin.issue(&alice, &[NAME]).await;
    // A second later: the list is ordered by issuance time first.
    admin.ca.clock.advance(Duration::seconds(1));
    let b = admin.issue(&bob, &["b.example.com"]).await;
    let serials = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["serial"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, all) = admin.get("/admin/certificates").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(serials(&all), [a.serial.clone(), b.serial.clone()]);
    assert_eq!(all["next"], Value::Null);
    let first = &all["items"][0];
    assert_eq!(first["names"], json!([NAME]));
    assert_eq!(first["status"], "active");
    assert!(first.get("chain_pem").is_none(), "lists leave the PEM out");

    let (_, by_name) = admin.get("/admin/certificates?name=b.example.com").await;
    assert_eq!(serials(&by_name), [b.serial.as_str()]);
    let (_, by_glob) = admin.get("/admin/certificates?name=*.example.com").await;
    assert_eq!(serials(&by_glob).len(), 2);
    let (_, by_other) = admin.get("/admin/certificates?name=*.example.org").await;
    assert!(serials(&by_other).is_empty());
    let alice_id = alice.url.rsplit('/').next().unwrap();
    let (_, by_account) = admin
        .get(&format!("/admin/certificates?account={alice_id}"))
        .await;
    assert_eq!(serials(&by_account), [a.serial.as_str()]);

    admin
        .post(
            &format!("/admin/certificates/{}/revoke", b.serial),
            json!({"reason": 4}),
        )
        .await;
    let (_, revoked) = admin.get("/admin/certificates?status=revoked").await;
    assert_eq!(serials(&revoked), [b.serial.as_str()]);
    assert_eq!(revoked["items"][0]["revocation_reason"], "superseded");
    let (_, active) = admin.get("/admin/certificates?status=active").await;
    assert_eq!(serials(&active), [a.serial.as_str()]);

    let soon = mayfly::api::admin::wire_time(admin.ca.now() + Duration::hours(1));
    let later = mayfly::api::admin::wire_time(admin.ca.now() + Duration::days(2));
    let (_, none) = admin
        .get(&format!("/admin/certificates?expiring_before={soon}"))
        .await;
    assert!(serials(&none).is_empty(), "{none}");
    let (_, both) = admin
        .get(&format!("/admin/certificates?expiring_before={later}"))
        .await;
    assert_eq!(serials(&both).len(), 2);

    let detail = admin
        .problem("/admin/certificates?status=dormant", None, 400, "malformed")
        .await;
    assert_eq!(
        detail,
        "status \"dormant\" is not one of active, expired, revoked"
    );
    let detail = admin
        .problem(
            "/admin/certificates?expiring_before=tomorrow",
            None,
            400,
            "malformed",
        )
        .await;
    assert!(detail.contains("is not an RFC 3339 time"), "{detail}");
    let detail = admin
        .problem("/admin/certificates?colour=red", None, 400, "malformed")
        .await;
    assert!(
        detail.starts_with("unknown query parameter \"colour\""),
        "{detail}"
    );
    admin
        .problem("/admin/certificates?name=a%25b", None, 400, "malformed")
        .await;
    admin
        .problem("/admin/certificates?limit=0", None, 400, "malformed")
        .await;
    admin
        .problem(
            "/admin/certificates?cursor=nonsense",
            None,
            400,
            "malformed",
        )
        .await;
}

#[tokio::test]
async fn pages_are_walked_with_the_cursor_in_a_stable_order() {
    let admin = Admin::start(Config::default()).await;
    let account = admin.ca.new_account().await;
    let mut issued = Vec::new();
    for i in 0..5 {
        // Two certificates share a second: the id breaks the tie.
        if i % 2 == 0 {
            admin.ca.clock.advance(Duration::seconds(1));
        }
        issued.push(admin.issue(&account, &[NAME]).await.serial);
    }
    let mut seen = Vec::new();
    let mut path = "/admin/certificates?limit=2".to_owned();
    for page in 0..5 {
        let (status, body) = admin.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let items = body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|c| c["serial"].as_str().unwrap().to_owned()),
        );
        match body["next"].as_str() {
            Some(next) => path = format!("/admin/certificates?limit=2&cursor={next}"),
            None => {
                assert_eq!(page, 2, "three pages of 2, 2 and 1");
                break;
            }
        }
    }
    // Every certificate once, in the order of one big page.
    let (_, whole) = admin.get("/admin/certificates?limit=1000").await;
    let whole: Vec<String> = whole["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["serial"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, whole);
    let mut sorted = seen.clone();
    sorted.sort();
    issued.sort();
    assert_eq!(sorted, issued);

    let (_, accounts) = admin.get("/admin/accounts?limit=1").await;
    assert_eq!(accounts["items"].as_array().unwrap().len(), 1);
    let next = accounts["next"].as_str().unwrap();
    let (_, rest) = admin
        .get(&format!("/admin/accounts?limit=1&cursor={next}"))
        .await;
    assert_eq!(rest["items"], json!([]));
    assert_eq!(rest["next"], Value::Null);
}

#[tokio::test]
async fn one_certificate_and_revocation() {
    let admin = Admin::start(Config::default()).await;
    let account = admin.ca.new_account().await;
    let issued = admin.issue(&account, &[NAME]).await;
    let (status, cert) = admin
        .get(&format!(
            "/admin/certificates/{}",
            issued.serial.to_uppercase()
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{cert}");
    assert_eq!(cert["serial"], issued.serial);
    assert!(
        issued
            .identity_pem
            .starts_with(cert["chain_pem"].as_str().unwrap()),
        "the stored chain"
    );
    let detail = admin
        .problem("/admin/certificates/4a0b0c0d", None, 404, "notFound")
        .await;
    assert_eq!(
        detail,
        "no certificate with serial 4a0b0c0d was issued by this CA"
    );
    let detail = admin
        .problem("/admin/certificates/xyz", None, 400, "malformed")
        .await;
    assert_eq!(detail, "\"xyz\" is not a serial number in hex");

    let revoke = format!("/admin/certificates/{}/revoke", issued.serial);
    let detail = admin
        .problem(&revoke, Some(json!({"reason": "sleepy"})), 400, "malformed")
        .await;
    assert!(
        detail.starts_with("reason \"sleepy\" is not an RFC 5280 CRLReason"),
        "{detail}"
    );
    admin
        .problem(&revoke, Some(json!({"reason": 7})), 400, "malformed")
        .await;
    admin
        .problem(&revoke, Some(json!({"why": 1})), 400, "malformed")
        .await;
    let (status, revoked) = admin
        .post(&revoke, json!({"reason": "keyCompromise"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(revoked["revocation_reason"], "keyCompromise");
    let detail = admin
        .problem(&revoke, Some(json!({"reason": 1})), 409, "conflict")
        .await;
    assert_eq!(
        detail,
        format!("certificate {} is already revoked", issued.serial)
    );
    // The CRL signed after the revocation lists it.
    let (status, crl) = admin.post("/admin/crl", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{crl}");
    assert_eq!(crl["entries"], 1);
    assert!(crl["number"].as_u64().unwrap() >= 2, "{crl}");
}

#[tokio::test]
async fn accounts_are_listed_and_deactivated() {
    let admin = Admin::start(Config::default()).await;
    let account = admin.ca.new_account().await;
    let id = account.url.rsplit('/').next().unwrap().to_owned();
    let (status, list) = admin.get("/admin/accounts").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["items"][0]["id"], id);
    assert_eq!(list["items"][0]["status"], "valid");
    let (status, deactivated) = admin
        .post(&format!("/admin/accounts/{id}/deactivate"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{deactivated}");
    assert_eq!(deactivated["status"], "deactivated");
    admin
        .problem(
            &format!("/admin/accounts/{id}/deactivate"),
            Some(json!({})),
            409,
            "conflict",
        )
        .await;
    admin
        .problem(
            "/admin/accounts/nobody/deactivate",
            Some(json!({})),
            404,
            "notFound",
        )
        .await;
    // RFC 8555 §7.3.6: the deactivated account's key authorizes nothing more.
    let reply = admin.ca.new_order_reply(&account, &[NAME]).await;
    reply.expect_problem(403, "unauthorized");
}

#[tokio::test]
async fn eab_keys_are_added_listed_and_revoked() {
    let admin = Admin::start(Config::default()).await;
    let (status, key) = admin
        .post(
            "/admin/eab-keys",
            json!({"label": "team a", "reusable": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let kid = key["kid"].as_str().unwrap().to_owned();
    let hmac = key["hmac_key"].as_str().unwrap().to_owned();
    assert_eq!(hmac.len(), 86, "64 bytes, base64url");
    let (_, list) = admin.get("/admin/eab-keys").await;
    assert_eq!(list["items"][0]["kid"], kid.as_str());
    assert_eq!(list["items"][0]["label"], "team a");
    assert!(
        !list.to_string().contains(&hmac),
        "the list shows no HMAC key"
    );
    let (status, revoked) = admin
        .post(&format!("/admin/eab-keys/{kid}/revoke"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    admin
        .problem(
            &format!("/admin/eab-keys/{kid}/revoke"),
            Some(json!({})),
            409,
            "conflict",
        )
        .await;
    let detail = admin
        .problem(
            "/admin/eab-keys/nope/revoke",
            Some(json!({})),
            404,
            "notFound",
        )
        .await;
    assert_eq!(detail, "there is no EAB key with kid \"nope\"");
    let detail = admin
        .problem(
            "/admin/eab-keys",
            Some(json!({"provisioner": "ghost"})),
            400,
            "malformed",
        )
        .await;
    assert!(
        detail.starts_with("there is no ACME provisioner \"ghost\""),
        "{detail}"
    );
}

#[tokio::test]
async fn the_ca_chain_is_served() {
    let admin = Admin::start(Config::default()).await;
    let (status, ca) = admin.get("/admin/ca").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ca["root_pem"], admin.ca.issuer.root_pem());
    assert_eq!(ca["intermediate_pem"], admin.ca.issuer.intermediate_pem());
    assert_eq!(
        ca["chain_pem"],
        format!(
            "{}{}",
            admin.ca.issuer.intermediate_pem(),
            admin.ca.issuer.root_pem()
        )
    );
}

#[tokio::test]
async fn renewal_windows_move_reset_and_refuse_bad_requests() {
    let admin = Admin::start(Config::default()).await;
    let account = admin.ca.new_account().await;
    let issued = admin.issue(&account, &[NAME]).await;
    let path = format!("/admin/renewal-windows/{}", issued.serial);
    let (status, moved) = admin.post(&path, json!({"action": "renew-now"})).await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    let now = admin.ca.now();
    assert_eq!(moved["window"]["start"], mayfly::api::admin::wire_time(now));
    assert_eq!(
        moved["window"]["end"],
        mayfly::api::admin::wire_time(now + Duration::minutes(5))
    );
    let start = mayfly::api::admin::wire_time(now + Duration::hours(1));
    let end = mayfly::api::admin::wire_time(now + Duration::hours(2));
    let (status, moved) = admin
        .post(&path, json!({"action": "move", "start": start, "end": end}))
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["window"], json!({"start": start, "end": end}));
    let (status, reset) = admin.post(&path, json!({"action": "reset"})).await;
    assert_eq!(status, StatusCode::OK, "{reset}");
    assert_eq!(reset["window"], Value::Null);

    admin
        .problem(
            &path,
            Some(json!({"action": "move", "start": end, "end": start})),
            400,
            "malformed",
        )
        .await;
    admin
        .problem(&path, Some(json!({"action": "snooze"})), 400, "malformed")
        .await;
    admin
        .problem(
            &path,
            Some(json!({"action": "reset", "start": start})),
            400,
            "malformed",
        )
        .await;
    admin
        .problem(
            "/admin/renewal-windows/4a0b0c0d",
            Some(json!({"action": "reset"})),
            404,
            "notFound",
        )
        .await;
}

// ---------------------------------------------------------------------------------------------
// The OpenAPI document

/// The served document is the generated one, and `docs/admin-openapi.json` is a copy of it.
/// To refresh the copy: `mayfly admin openapi > docs/admin-openapi.json`, or run this test with
/// `MAYFLY_WRITE_OPENAPI=1`.
#[tokio::test]
async fn the_openapi_document_is_served_and_matches_the_committed_copy() {
    let admin = Admin::start(Config::default()).await;
    let (status, served) = admin.get("/admin/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let generated = mayfly::api::admin::openapi::openapi();
    assert_eq!(served, generated);
    let text = format!("{}\n", serde_json::to_string_pretty(&generated).unwrap());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/admin-openapi.json");
    if std::env::var_os("MAYFLY_WRITE_OPENAPI").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "docs/admin-openapi.json differs from the generated document; run \
         `mayfly admin openapi > docs/admin-openapi.json` (or this test with MAYFLY_WRITE_OPENAPI=1)"
    );
    // One path per route of the table; two methods on /admin/eab-keys.
    let paths = generated["paths"].as_object().unwrap();
    assert_eq!(paths.len(), 13, "{:?}", paths.keys());
    assert!(paths["/admin/eab-keys"]["get"].is_object());
    assert!(paths["/admin/eab-keys"]["post"]["requestBody"].is_object());
    assert_eq!(
        paths["/admin/certificates/{serial}"]["get"]["parameters"][0]["name"],
        "serial"
    );
}

/// A name pattern matches one identifier: `a.*b.example.com` spans the two names of one
/// certificate in its stored text, yet matches neither name.
#[tokio::test]
async fn a_name_pattern_does_not_match_across_two_identifiers() {
    let admin = Admin::start(Config::default()).await;
    let account = admin.ca.new_account().await;
    let both = admin.issue(&account, &[NAME, "b.example.com"]).await;
    let (_, spanning) = admin.get("/admin/certificates?name=a.*b.example.com").await;
    assert_eq!(spanning["items"], json!([]), "{spanning}");
    let (_, second) = admin.get("/admin/certificates?name=b.*").await;
    assert_eq!(second["items"][0]["serial"], both.serial.as_str());
    assert_eq!(second["items"][0]["names"], json!([NAME, "b.example.com"]));
}

/// Admin actions and refused admin callers are in the audit log, and `GET /admin/audit`
/// reads it: filtered, newest first, paged.
#[tokio::test]
async fn the_audit_log_records_admin_actions_and_refusals() {
    let admin = Admin::start(tlsclient_default()).await;
    let account = admin.ca.new_account().await;
    let issued = admin.issue(&account, &[NAME]).await;
    // An ACME client's certificate knocks: refused, and recorded.
    let stranger = client(&admin.ca, Some(&issued.identity_pem));
    let response = stranger
        .get(format!("{}/admin/audit", admin.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let revoke = format!("/admin/certificates/{}/revoke", issued.serial);
    let (status, _) = admin.post(&revoke, json!({"reason": "superseded"})).await;
    assert_eq!(status, StatusCode::OK);
    admin.ca.state.0.authority.flush_audit().await;

    let (status, page) = admin.get("/admin/audit?kind=certificate.revoked").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let events = page["items"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{page}");
    let revoked = &events[0];
    assert_eq!(revoked["object"], format!("serial:{}", issued.serial));
    assert_eq!(revoked["outcome"], "success");
    let actor = revoked["actor"].as_str().unwrap();
    assert!(
        actor.starts_with("admin:CN=ops-test") && actor.contains("serial"),
        "the admin's certificate is the actor: {actor}"
    );

    let (_, page) = admin.get("/admin/audit?kind=admin.action").await;
    let actions: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["certificate.revoke"]);

    let (_, page) = admin.get("/admin/audit?kind=auth.refused").await;
    let refused = &page["items"][0];
    assert_eq!(refused["object"], "path:/admin/audit");
    assert_eq!(refused["outcome"], "failure");
    assert!(
        refused["actor"].as_str().unwrap().starts_with("admin:"),
        "the refused certificate is named: {refused}"
    );

    // Newest first, one at a time: the cursor walks back.
    let (_, first) = admin.get("/admin/audit?limit=1").await;
    let next = first["next"].as_str().unwrap().to_owned();
    let (_, second) = admin
        .get(&format!("/admin/audit?limit=1&cursor={next}"))
        .await;
    assert!(second["items"][0]["id"].as_i64().unwrap() < first["items"][0]["id"].as_i64().unwrap());
    let detail = admin
        .problem("/admin/audit?since=yesterday", None, 400, "malformed")
        .await;
    assert!(detail.contains("since"), "{detail}");
    admin
        .problem("/admin/audit?cursor=abc", None, 400, "malformed")
        .await;
}
