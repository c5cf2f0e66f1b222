//! In-process tests of the account lifecycle (RFC 8555 §7.3): update, deactivation, keyChange,
//! the orders list and External Account Binding. The router runs with `oneshot` on a SQLite
//! database in a temporary directory, a fake clock and a fake resolver.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use mayfly::app::{App, AppState, Parts};
use mayfly::clock::{Clock as _, FakeClock};
use mayfly::config::Config;
use mayfly::issuer::{CaOptions, Issuer, KeyType, init_ca};
use mayfly::jose::eab::{MacAlgorithm, sign_eab};
use mayfly::jose::{KeyRef, SigningKey, sign_jws};
use mayfly::storage::Store;
use mayfly::validation::FakeResolver;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tower::ServiceExt as _;

const BASE: &str = "https://127.0.0.1:14000";
const T0: i64 = 1_800_000_000;

struct Harness {
    router: Router,
    state: AppState,
    store: Arc<dyn Store>,
    clock: Arc<FakeClock>,
    _dir: tempfile::TempDir,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn location(&self) -> String {
        self.headers[header::LOCATION].to_str().unwrap().to_owned()
    }

    /// The `Link` target with `rel="<rel>"`, if any.
    fn link(&self, rel: &str) -> Option<String> {
        let suffix = format!(">;rel=\"{rel}\"");
        self.headers
            .get_all(header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_suffix(&suffix)?.strip_prefix('<'))
            .map(str::to_owned)
    }

    #[track_caller]
    fn assert_problem(&self, status: u16, kind: &str, detail_fragment: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(
            self.body["type"],
            format!("urn:ietf:params:acme:error:{kind}"),
            "{}",
            self.body
        );
        assert_eq!(self.body["status"], status, "{}", self.body);
        let detail = self.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(detail_fragment), "{detail}");
    }
}

impl Harness {
    async fn new() -> Self {
        Self::with(|_| {}).await
    }

    async fn with(configure: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.server.data_dir = dir.path().to_owned();
        configure(&mut config);
        let options = CaOptions {
            key_type: KeyType::P256,
            root_common_name: "Test Root".into(),
            intermediate_common_name: "Test Intermediate".into(),
            root_validity: time::Duration::days(30),
            intermediate_validity: time::Duration::days(20),
        };
        init_ca(dir.path(), &options, None).unwrap();
        let issuer = Issuer::load(dir.path(), None).unwrap();
        let store = mayfly::storage::connect(&config.database_url(), 4)
            .await
            .unwrap();
        let clock = Arc::new(FakeClock::new(
            OffsetDateTime::from_unix_timestamp(T0).unwrap(),
        ));
        let parts = Parts {
            store: store.clone(),
            issuer: Arc::new(issuer),
            clock: clock.clone(),
            resolver: FakeResolver::new(),
        };
        let state = AppState(Arc::new(App::assemble(config, parts).await.unwrap()));
        Harness {
            router: mayfly::api::router(state.clone()),
            state,
            store,
            clock,
            _dir: dir,
        }
    }

    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn nonce(&self) -> String {
        let request = Request::builder()
            .method(Method::HEAD)
            .uri("/acme/new-nonce")
            .body(Body::empty())
            .unwrap();
        let reply = self.send(request).await;
        reply.headers["replay-nonce"].to_str().unwrap().to_owned()
    }

    /// POSTs `jws` to `url` (a full URL of this server).
    async fn post_jws(&self, url: &str, jws: &Value) -> Reply {
        let path = url.strip_prefix(BASE).unwrap();
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/jose+json")
            .body(Body::from(jws.to_string()))
            .unwrap();
        self.send(request).await
    }

    /// A JWS with a fresh nonce, POSTed to `url`; `payload: None` is POST-as-GET.
    async fn post(
        &self,
        key: &SigningKey,
        key_ref: KeyRef<'_>,
        url: &str,
        payload: Option<&Value>,
    ) -> Reply {
        let nonce = self.nonce().await;
        let jws = sign_jws(key, key_ref, Some(&nonce), url, payload);
        self.post_jws(url, &jws).await
    }

    async fn new_account_with(&self, key: &SigningKey, payload: &Value) -> Reply {
        self.post(key, KeyRef::Jwk, &url("/acme/new-account"), Some(payload))
            .await
    }

    /// A new account for `key`; returns its URL.
    async fn account(&self, key: &SigningKey) -> String {
        let reply = self
            .new_account_with(key, &json!({"termsOfServiceAgreed": true}))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.location()
    }

    async fn new_order(&self, key: &SigningKey, account: &str, name: &str) -> String {
        let payload = json!({"identifiers": [{"type": "dns", "value": name}]});
        let reply = self
            .post(
                key,
                KeyRef::Kid(account),
                &url("/acme/new-order"),
                Some(&payload),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.location()
    }
}

fn url(path: &str) -> String {
    format!("{BASE}{path}")
}

// ---------------------------------------------------------------------------------------------
// Update and deactivation (RFC 8555 §7.3.2, §7.3.6)

#[tokio::test]
async fn contact_update_is_stored_and_returned() {
    let h = Harness::new().await;
    let key = SigningKey::generate_p256();
    let account = h.account(&key).await;
    let update = json!({"contact": ["mailto:new@example.com"]});
    let reply = h
        .post(&key, KeyRef::Kid(&account), &account, Some(&update))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["contact"], json!(["mailto:new@example.com"]));
    assert_eq!(reply.body["status"], "valid");
    assert_eq!(reply.body["orders"], format!("{account}/orders"));
    assert_eq!(reply.location(), account);

    let read = h.post(&key, KeyRef::Kid(&account), &account, None).await;
    assert_eq!(read.body["contact"], json!(["mailto:new@example.com"]));

    // certbot echoes the whole account object back; the fields it cannot change are ignored.
    let echo = json!({"status": "valid", "contact": [], "key": key.jwk(), "orders": "x"});
    let reply = h
        .post(&key, KeyRef::Kid(&account), &account, Some(&echo))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body.get("contact"), None, "{}", reply.body);
}

#[tokio::test]
async fn invalid_contact_is_refused() {
    let h = Harness::new().await;
    let key = SigningKey::generate_p256();
    let account = h.account(&key).await;
    let cases = [
        (json!({"contact": ["mailto:nobody"]}), "invalidContact"),
        (json!({"contact": ["tel:+15555555"]}), "unsupportedContact"),
        (json!({"contact": "mailto:a@example.com"}), "malformed"),
    ];
    for (update, kind) in cases {
        let reply = h
            .post(&key, KeyRef::Kid(&account), &account, Some(&update))
            .await;
        reply.assert_problem(400, kind, "");
    }
}

#[tokio::test]
async fn deactivated_account_is_refused_afterwards() {
    let h = Harness::new().await;
    let key = SigningKey::generate_p256();
    let account = h.account(&key).await;
    let reply = h
        .post(
            &key,
            KeyRef::Kid(&account),
            &account,
            Some(&json!({"status": "revoked"})),
        )
        .await;
    reply.assert_problem(400, "malformed", "only be changed to \"deactivated\"");

    let reply = h
        .post(
            &key,
            KeyRef::Kid(&account),
            &account,
            Some(&json!({"status": "deactivated"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["status"], "deactivated");

    let id = account.rsplit('/').next().unwrap();
    let later = h.post(&key, KeyRef::Kid(&account), &account, None).await;
    later.assert_problem(403, "unauthorized", &format!("account {id} is deactivated"));
    let order = json!({"identifiers": [{"type": "dns", "value": "a.example.com"}]});
    let later = h
        .post(
            &key,
            KeyRef::Kid(&account),
            &url("/acme/new-order"),
            Some(&order),
        )
        .await;
    later.assert_problem(403, "unauthorized", "is deactivated");
    // newAccount with the same key does not bring it back.
    let again = h
        .new_account_with(&key, &json!({"onlyReturnExisting": true}))
        .await;
    again.assert_problem(403, "unauthorized", "deactivated");
}

// ---------------------------------------------------------------------------------------------
// keyChange (RFC 8555 §7.3.5)

/// The keyChange request: an outer JWS by `old` (kid) around an inner one by `new` (jwk).
async fn key_change(
    h: &Harness,
    account: &str,
    old: &SigningKey,
    new: &SigningKey,
    inner_payload: &Value,
    inner_nonce: Option<&str>,
    inner_url: &str,
) -> Reply {
    let inner = sign_jws(
        new,
        KeyRef::Jwk,
        inner_nonce,
        inner_url,
        Some(inner_payload),
    );
    h.post(
        old,
        KeyRef::Kid(account),
        &url("/acme/key-change"),
        Some(&inner),
    )
    .await
}

#[tokio::test]
async fn key_change_replaces_the_key() {
    let h = Harness::new().await;
    let directory = h
        .send(
            Request::builder()
                .uri("/directory")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(directory.body["keyChange"], url("/acme/key-change"));

    let (old, new) = (SigningKey::generate_p256(), SigningKey::generate_p256());
    let account = h.account(&old).await;
    let payload = json!({"account": account, "oldKey": old.jwk()});
    let reply = key_change(
        &h,
        &account,
        &old,
        &new,
        &payload,
        None,
        &url("/acme/key-change"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["key"], serde_json::to_value(new.jwk()).unwrap());

    // The old key no longer signs for the account; the new one does.
    let stale = h.post(&old, KeyRef::Kid(&account), &account, None).await;
    stale.assert_problem(400, "malformed", "signature does not verify");
    let fresh = h.post(&new, KeyRef::Kid(&account), &account, None).await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.body);
    let lookup = h
        .new_account_with(&new, &json!({"onlyReturnExisting": true}))
        .await;
    assert_eq!(lookup.status, StatusCode::OK);
    assert_eq!(lookup.location(), account);
    let gone = h
        .new_account_with(&old, &json!({"onlyReturnExisting": true}))
        .await;
    gone.assert_problem(400, "accountDoesNotExist", "");
}

#[tokio::test]
async fn key_change_to_a_key_in_use_is_a_conflict() {
    let h = Harness::new().await;
    let (key, other) = (SigningKey::generate_p256(), SigningKey::generate_p256());
    let account = h.account(&key).await;
    let other_account = h.account(&other).await;
    let payload = json!({"account": account, "oldKey": key.jwk()});
    let reply = key_change(
        &h,
        &account,
        &key,
        &other,
        &payload,
        None,
        &url("/acme/key-change"),
    )
    .await;
    reply.assert_problem(409, "malformed", "already belongs to an account");
    assert_eq!(reply.location(), other_account);
}

#[tokio::test]
async fn key_change_refusals() {
    let h = Harness::new().await;
    let (key, new, stranger) = (
        SigningKey::generate_p256(),
        SigningKey::generate_p256(),
        SigningKey::generate_p256(),
    );
    let account = h.account(&key).await;
    let other_account = h.account(&stranger).await;
    let key_change_url = url("/acme/key-change");
    let good = json!({"account": account, "oldKey": key.jwk()});
    let cases: [(&str, Value, Option<&str>, String, &str); 6] = [
        (
            "inner url differs",
            good.clone(),
            None,
            url("/acme/new-order"),
            "is not the outer url",
        ),
        (
            "inner nonce",
            good.clone(),
            Some("nonce"),
            key_change_url.clone(),
            "must not have a \"nonce\"",
        ),
        (
            "wrong oldKey",
            json!({"account": account, "oldKey": stranger.jwk()}),
            None,
            key_change_url.clone(),
            "oldKey is not the account's current key",
        ),
        (
            "other account",
            json!({"account": other_account, "oldKey": key.jwk()}),
            None,
            key_change_url.clone(),
            "is not the account that signed the request",
        ),
        (
            "same key",
            good.clone(),
            None,
            key_change_url.clone(),
            "the new key is the account's current key",
        ),
        (
            "no oldKey",
            json!({"account": account}),
            None,
            key_change_url.clone(),
            "not a keyChange object",
        ),
    ];
    for (name, payload, nonce, inner_url, fragment) in cases {
        let new_key = if name == "same key" { &key } else { &new };
        let reply = key_change(&h, &account, &key, new_key, &payload, nonce, &inner_url).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{name}: {}",
            reply.body
        );
        reply.assert_problem(400, "malformed", fragment);
    }
    // Nothing changed.
    let read = h.post(&key, KeyRef::Kid(&account), &account, None).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
}

// ---------------------------------------------------------------------------------------------
// Orders list (RFC 8555 §7.1.2.1)

#[tokio::test]
async fn orders_list_pages_newest_first() {
    let h = Harness::with(|c| c.acme.orders_page_size = 2).await;
    let key = SigningKey::generate_p256();
    let account = h.account(&key).await;
    let mut orders = Vec::new();
    for n in 0..3 {
        orders.push(
            h.new_order(&key, &account, &format!("o{n}.example.com"))
                .await,
        );
        h.clock.advance(time::Duration::seconds(1));
    }
    let list_url = format!("{account}/orders");
    let first = h.post(&key, KeyRef::Kid(&account), &list_url, None).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body, json!({"orders": [orders[2], orders[1]]}));
    let next = first.link("next").expect("a next link");
    assert!(next.starts_with(&format!("{list_url}?cursor=")), "{next}");

    let second = h.post(&key, KeyRef::Kid(&account), &next, None).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.body, json!({"orders": [orders[0]]}));
    assert_eq!(second.link("next"), None);
    assert!(second.link("index").is_some());

    // An expired (so invalid) order is left out.
    h.clock.advance(time::Duration::days(2));
    let later = h.post(&key, KeyRef::Kid(&account), &list_url, None).await;
    assert_eq!(later.body, json!({"orders": []}));
}

#[tokio::test]
async fn orders_list_belongs_to_its_account() {
    let h = Harness::new().await;
    let (key, other) = (SigningKey::generate_p256(), SigningKey::generate_p256());
    let account = h.account(&key).await;
    let other_account = h.account(&other).await;
    h.new_order(&key, &account, "mine.example.com").await;
    let reply = h
        .post(
            &other,
            KeyRef::Kid(&other_account),
            &format!("{account}/orders"),
            None,
        )
        .await;
    reply.assert_problem(403, "unauthorized", "only be read by the account itself");
    let bad_cursor = h
        .post(
            &key,
            KeyRef::Kid(&account),
            &format!("{account}/orders?cursor=junk"),
            None,
        )
        .await;
    bad_cursor.assert_problem(400, "malformed", "invalid cursor");
}

// ---------------------------------------------------------------------------------------------
// External Account Binding (RFC 8555 §7.3.4)

async fn eab_harness() -> Harness {
    Harness::with(|c| c.acme.external_account_required = true).await
}

fn with_binding(binding: Value) -> Value {
    json!({"termsOfServiceAgreed": true, "externalAccountBinding": binding})
}

#[tokio::test]
async fn directory_shows_external_account_required() {
    for required in [false, true] {
        let h = Harness::with(|c| c.acme.external_account_required = required).await;
        let request = Request::builder()
            .uri("/directory")
            .body(Body::empty())
            .unwrap();
        let reply = h.send(request).await;
        assert_eq!(reply.body["meta"]["externalAccountRequired"], required);
    }
}

#[tokio::test]
async fn eab_required_and_missing() {
    let h = eab_harness().await;
    let key = SigningKey::generate_p256();
    let reply = h
        .new_account_with(&key, &json!({"termsOfServiceAgreed": true}))
        .await;
    reply.assert_problem(
        403,
        "externalAccountRequired",
        "requires an External Account Binding",
    );
}

#[tokio::test]
async fn eab_binds_once_with_every_mac_algorithm() {
    let h = eab_harness().await;
    let new_account = url("/acme/new-account");
    for alg in [
        MacAlgorithm::Hs256,
        MacAlgorithm::Hs384,
        MacAlgorithm::Hs512,
    ] {
        let eab = mayfly::admin::eab::add(&*h.store, "team", false, h.clock.now())
            .await
            .unwrap();
        let key = SigningKey::generate_p256();
        let binding = sign_eab(alg, &eab.id, &eab.hmac_key, &new_account, &key.jwk());
        let reply = h.new_account_with(&key, &with_binding(binding)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{alg:?}: {}", reply.body);
        let id = reply.location().rsplit('/').next().unwrap().to_owned();
        let bound = h.state.0.authority.account_eab_key(&id).await.unwrap();
        assert_eq!(bound.map(|k| k.label), Some("team".to_owned()));

        // The same key again, for another account: single use.
        let second = SigningKey::generate_p256();
        let binding = sign_eab(alg, &eab.id, &eab.hmac_key, &new_account, &second.jwk());
        let reply = h.new_account_with(&second, &with_binding(binding)).await;
        reply.assert_problem(403, "unauthorized", "already bound an account");
    }
}

#[tokio::test]
async fn eab_refusals() {
    let h = eab_harness().await;
    let new_account = url("/acme/new-account");
    let now = h.clock.now();
    let eab = mayfly::admin::eab::add(&*h.store, "", true, now)
        .await
        .unwrap();
    let revoked = mayfly::admin::eab::add(&*h.store, "", true, now)
        .await
        .unwrap();
    h.store.revoke_eab_key(&revoked.id, now).await.unwrap();
    let key = SigningKey::generate_p256();
    let jwk = key.jwk();
    let hs = MacAlgorithm::Hs256;
    let cases: [(&str, Value, u16, &str, &str); 5] = [
        (
            "bad MAC",
            sign_eab(hs, &eab.id, &[1; 64], &new_account, &jwk),
            403,
            "unauthorized",
            "MAC (HS256) does not verify",
        ),
        (
            "unknown kid",
            sign_eab(hs, "no-such-kid", &eab.hmac_key, &new_account, &jwk),
            403,
            "unauthorized",
            "\"no-such-kid\" is not known",
        ),
        (
            "revoked",
            sign_eab(hs, &revoked.id, &revoked.hmac_key, &new_account, &jwk),
            403,
            "unauthorized",
            "was revoked",
        ),
        (
            "wrong url",
            sign_eab(hs, &eab.id, &eab.hmac_key, &url("/acme/new-order"), &jwk),
            400,
            "malformed",
            "is not the newAccount URL",
        ),
        (
            "another key in the payload",
            sign_eab(
                hs,
                &eab.id,
                &eab.hmac_key,
                &new_account,
                &SigningKey::generate_p256().jwk(),
            ),
            400,
            "malformed",
            "not the key this request is signed with",
        ),
    ];
    for (name, binding, status, kind, fragment) in cases {
        let reply = h.new_account_with(&key, &with_binding(binding)).await;
        assert_eq!(reply.status.as_u16(), status, "{name}: {}", reply.body);
        reply.assert_problem(status, kind, fragment);
    }

    // A reusable key binds several accounts; an existing account is found without a binding.
    for _ in 0..2 {
        let key = SigningKey::generate_p256();
        let binding = sign_eab(hs, &eab.id, &eab.hmac_key, &new_account, &key.jwk());
        let reply = h.new_account_with(&key, &with_binding(binding)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let again = h
            .new_account_with(&key, &json!({"onlyReturnExisting": true}))
            .await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    }
    assert_eq!(h.store.eab_key(&eab.id).await.unwrap().use_count, 2);
}
