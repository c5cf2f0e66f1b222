//! A mock OpenID Connect identity provider on a loopback port, over HTTPS with a certificate
//! from a throwaway CA (its PEM written to a file, for an OIDC provisioner's `ca_file`). It
//! serves `/.well-known/openid-configuration` and `/jwks`, signs ID tokens with its keys (an
//! RS256 and an ES256 key to start with), lets a test add, publish and withdraw keys and set
//! the `Cache-Control` header, and counts the fetches. It stops on Drop.
//!
//! ```ignore
//! let idp = MockIdp::start().await;
//! let mut config = Config::default();
//! idp.add_to(&mut config, "corp");                 // [provisioners.corp], type = "oidc"
//! let token = idp.id_token("alice@example.com", now); // RS256, aud = CLIENT_ID
//! let mut claims = idp.claims("alice@example.com", now);
//! claims["nonce"] = json!(account_key.jwk().thumbprint());
//! let bound = idp.sign(ES256_KID, &claims);
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use mayfly::config::Config;
use mayfly::jose::{SigningKey, sign_jwt};
use mayfly::provisioner::ProvisionerConfig;
use mayfly::provisioner::oidc::OidcProvisionerConfig;
use serde_json::{Value, json};
use tempfile::TempDir;
use time::{Duration, OffsetDateTime};

/// The client id (`aud`) of the tokens [`MockIdp::claims`] makes, and of
/// [`MockIdp::provisioner_config`].
pub const CLIENT_ID: &str = "mayfly-test";
/// The RS256 key's `kid`; [`MockIdp::id_token`] signs with it.
pub const RS256_KID: &str = "rsa-1";
/// The ES256 key's `kid`.
pub const ES256_KID: &str = "ec-1";

/// A running mock identity provider.
pub struct MockIdp {
    state: Arc<IdpState>,
    ca_file: PathBuf,
    handle: Handle<SocketAddr>,
    _dir: TempDir,
}

struct IdpState {
    /// `https://127.0.0.1:<port>`.
    issuer: String,
    keys: Mutex<Vec<IdpKey>>,
    cache_control: Mutex<Option<String>>,
    discovery_fetches: AtomicUsize,
    jwks_fetches: AtomicUsize,
}

struct IdpKey {
    kid: String,
    key: Arc<SigningKey>,
    /// Whether `/jwks` lists it.
    published: bool,
}

impl MockIdp {
    /// Starts the provider with its two published keys and no `Cache-Control` header.
    pub async fn start() -> MockIdp {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let (ca_pem, cert_pem, key_pem) = certificates();
        let ca_file = dir.path().join("idp-ca.pem");
        std::fs::write(&ca_file, ca_pem).unwrap();

        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(IdpState {
            issuer: format!("https://127.0.0.1:{port}"),
            keys: Mutex::new(vec![
                IdpKey {
                    kid: RS256_KID.into(),
                    key: Arc::new(SigningKey::generate_rsa2048()),
                    published: true,
                },
                IdpKey {
                    kid: ES256_KID.into(),
                    key: Arc::new(SigningKey::generate_p256()),
                    published: true,
                },
            ]),
            cache_control: Mutex::new(None),
            discovery_fetches: AtomicUsize::new(0),
            jwks_fetches: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .with_state(state.clone());
        let tls = RustlsConfig::from_pem(cert_pem.into_bytes(), key_pem.into_bytes())
            .await
            .unwrap();
        let handle = Handle::new();
        let server = axum_server::from_tcp_rustls(listener, tls)
            .unwrap()
            .handle(handle.clone());
        tokio::spawn(async move {
            let _ = server.serve(router.into_make_service()).await;
        });
        MockIdp {
            state,
            ca_file,
            handle,
            _dir: dir,
        }
    }

    /// `https://127.0.0.1:<port>`: the `iss` of its tokens.
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    pub fn configuration_endpoint(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.state.issuer)
    }

    /// The PEM file of the CA that issued the provider's HTTPS certificate.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// An OIDC provisioner's configuration for this provider: [`CLIENT_ID`], its
    /// configuration endpoint, its CA as `ca_file`; everything else the default.
    pub fn provisioner_config(&self) -> OidcProvisionerConfig {
        OidcProvisionerConfig {
            client_id: CLIENT_ID.into(),
            configuration_endpoint: self.configuration_endpoint(),
            ca_file: Some(self.ca_file.clone()),
            ..OidcProvisionerConfig::default()
        }
    }

    /// Adds `[provisioners.<name>]` with [`MockIdp::provisioner_config`] to `config`.
    pub fn add_to(&self, config: &mut Config, name: &str) {
        config.provisioners.insert(
            name.to_owned(),
            ProvisionerConfig::Oidc(self.provisioner_config()),
        );
    }

    /// The claims of a good ID token for `email`, issued at `now` for an hour: `iss`, `aud`
    /// ([`CLIENT_ID`]), `sub`, `email`, `email_verified: true`, `iat`, `exp`. Change or remove
    /// members before [`MockIdp::sign`].
    pub fn claims(&self, email: &str, now: OffsetDateTime) -> Value {
        json!({
            "iss": self.state.issuer,
            "aud": CLIENT_ID,
            "sub": format!("user:{email}"),
            "email": email,
            "email_verified": true,
            "iat": now.unix_timestamp(),
            "exp": (now + Duration::hours(1)).unix_timestamp(),
        })
    }

    /// Signs `claims` with the key `kid` (published or not), naming it in the header.
    pub fn sign(&self, kid: &str, claims: &Value) -> String {
        let key = self.key(kid);
        sign_jwt(&key, Some(kid), claims)
    }

    /// A good ID token for `email` at `now`, signed with the RS256 key.
    pub fn id_token(&self, email: &str, now: OffsetDateTime) -> String {
        self.sign(RS256_KID, &self.claims(email, now))
    }

    /// The key called `kid`, to sign something [`MockIdp::sign`] cannot (a wrong `kid`).
    pub fn key(&self, kid: &str) -> Arc<SigningKey> {
        let keys = self.state.keys.lock().unwrap();
        let found = keys.iter().find(|k| k.kid == kid);
        found
            .unwrap_or_else(|| panic!("the IdP has no key {kid:?}"))
            .key
            .clone()
    }

    /// Adds a key; `/jwks` lists it only once `published` (or after [`MockIdp::publish`]).
    pub fn add_key(&self, kid: &str, key: SigningKey, published: bool) {
        let mut keys = self.state.keys.lock().unwrap();
        assert!(keys.iter().all(|k| k.kid != kid), "{kid:?} exists already");
        keys.push(IdpKey {
            kid: kid.to_owned(),
            key: Arc::new(key),
            published,
        });
    }

    /// Lists the key `kid` in `/jwks`.
    pub fn publish(&self, kid: &str) {
        self.set_published(kid, true);
    }

    /// Takes the key `kid` out of `/jwks` (it can still sign: a withdrawn key).
    pub fn withdraw(&self, kid: &str) {
        self.set_published(kid, false);
    }

    /// Rotation: a new key of the same type as `old_kid` is published as `new_kid`, and
    /// `old_kid` withdrawn.
    pub fn rotate(&self, old_kid: &str, new_kid: &str) {
        let key = match self.key(old_kid).alg() {
            "RS256" => SigningKey::generate_rsa2048(),
            _ => SigningKey::generate_p256(),
        };
        self.add_key(new_kid, key, true);
        self.withdraw(old_kid);
    }

    fn set_published(&self, kid: &str, published: bool) {
        let mut keys = self.state.keys.lock().unwrap();
        let key = keys.iter_mut().find(|k| k.kid == kid);
        key.unwrap_or_else(|| panic!("the IdP has no key {kid:?}"))
            .published = published;
    }

    /// The `Cache-Control` header of both documents; `None`: no header.
    pub fn set_cache_control(&self, value: Option<&str>) {
        *self.state.cache_control.lock().unwrap() = value.map(str::to_owned);
    }

    /// How many times the configuration document was fetched.
    pub fn discovery_fetches(&self) -> usize {
        self.state.discovery_fetches.load(Ordering::SeqCst)
    }

    /// How many times `/jwks` was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Stops serving at once: the provider is down from now on.
    pub fn stop(&self) {
        self.handle.shutdown();
    }
}

impl Drop for MockIdp {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

async fn discovery(State(state): State<Arc<IdpState>>) -> Response {
    state.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    let document = json!({
        "issuer": state.issuer,
        "jwks_uri": format!("{}/jwks", state.issuer),
        "authorization_endpoint": format!("{}/auth", state.issuer),
        "token_endpoint": format!("{}/token", state.issuer),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    });
    with_cache_control(&state, document)
}

async fn jwks(State(state): State<Arc<IdpState>>) -> Response {
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let keys: Vec<Value> = state
        .keys
        .lock()
        .unwrap()
        .iter()
        .filter(|k| k.published)
        .map(|k| {
            let mut jwk = serde_json::to_value(k.key.jwk()).unwrap();
            jwk["kid"] = json!(k.kid);
            jwk["use"] = json!("sig");
            jwk["alg"] = json!(k.key.alg());
            jwk
        })
        .collect();
    with_cache_control(&state, json!({ "keys": keys }))
}

fn with_cache_control(state: &IdpState, document: Value) -> Response {
    let mut response = axum::Json(document).into_response();
    if let Some(value) = state.cache_control.lock().unwrap().as_deref() {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, value.parse().unwrap());
    }
    response
}

/// A throwaway CA and a certificate it issued for 127.0.0.1 and localhost: (CA PEM,
/// certificate PEM, key PEM).
fn certificates() -> (String, String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        PKCS_ECDSA_P256_SHA256,
    };
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Mock IdP CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "Mock IdP");
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}
