//! The composition root: builds every component once and hands them to the router as
//! `AppState(Arc<App>)` (STYLE 3).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::api::links::Links;
use crate::api::nonce::NonceService;
use crate::authority::{Authority, Settings};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::issuer::{CaOptions, InitOutcome, Issuer, init_ca};
use crate::storage::Store;
use crate::validation::{HickoryResolver, Resolver, ValidationSettings, Validator};

/// Everything a request handler may use.
pub struct App {
    /// The configuration the server started with.
    pub config: Config,
    /// The use cases; the only writer to storage.
    pub authority: Authority,
    /// Issues and checks replay nonces.
    pub nonces: NonceService,
    /// Account keys for verifying signatures before the account is read; only where nonces
    /// are redeemed in a shared database (see api::account_keys).
    pub account_keys: Option<crate::api::account_keys::AccountKeys>,
    /// Builds every URL handed to clients.
    pub links: Links,
    /// Every provisioner: ACME directories, token verifiers, per-provisioner policy.
    pub provisioners: std::sync::Arc<crate::provisioner::Provisioners>,
    /// Renders `GET /metrics`; `None` when `metrics.enabled` is false.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Each ACME provisioner with its links, built once: requests only clone two `Arc`s.
    acme_contexts: std::collections::BTreeMap<String, crate::api::context::Acme>,
}

impl App {
    /// The default ACME provisioner (`[acme]`) with its links.
    pub fn default_acme(&self) -> crate::api::context::Acme {
        self.acme(crate::provisioner::DEFAULT_ACME)
            .expect("the default ACME provisioner is always built")
    }

    /// The ACME provisioner called `name` with its links.
    pub fn acme(&self, name: &str) -> Option<crate::api::context::Acme> {
        self.acme_contexts.get(name).cloned()
    }
}

/// Every ACME provisioner's request context: the default one at the root URLs, the others
/// under `/acme/<name>/`.
fn acme_contexts(
    provisioners: &crate::provisioner::Provisioners,
    links: &Links,
) -> std::collections::BTreeMap<String, crate::api::context::Acme> {
    provisioners
        .acme_names()
        .filter_map(|name| provisioners.acme(name))
        .map(|provisioner| {
            let links = if provisioner.name == crate::provisioner::DEFAULT_ACME {
                links.clone()
            } else {
                links.for_provisioner(&provisioner.name)
            };
            let context = crate::api::context::Acme {
                provisioner: provisioner.clone(),
                links: Arc::new(links),
            };
            (provisioner.name.clone(), context)
        })
        .collect()
}

/// The router's state: one shared `App`.
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

/// The injected parts (ARCHITECTURE decision 4): production opens real ones, tests pass
/// fakes.
pub struct Parts {
    pub store: Arc<dyn Store>,
    pub issuer: Arc<Issuer>,
    pub clock: Arc<dyn Clock>,
    pub resolver: Arc<dyn Resolver>,
}

impl App {
    pub async fn assemble(config: Config, parts: Parts) -> anyhow::Result<App> {
        let validator = Validator::new(
            ValidationSettings {
                http01_port: config.validation.http01_port,
                tls_alpn01_port: config.validation.tls_alpn01_port,
                timeout: config.validation.timeout.as_std(),
                max_concurrent: config.validation.max_concurrent,
            },
            parts.resolver,
        )
        .context("building the validation HTTP client")?;
        // Outbound HTTPS for provisioners (OIDC discovery and JWKS).
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .context("building the provisioners' HTTP client")?;
        let provisioners = Arc::new(
            crate::provisioner::Provisioners::from_config(&config, &http)
                .map_err(|e| anyhow::anyhow!("configuration error: {e}"))?,
        );
        // Every storage operation is timed for /metrics.
        let store = if config.metrics.enabled {
            crate::storage::metered::Metered::wrap(parts.store)
        } else {
            parts.store
        };
        let authority = Authority::new(
            store,
            parts.issuer,
            validator,
            parts.clock,
            Settings::from_config(&config),
            provisioners.clone(),
        );
        let secret = authority
            .shared_secret("nonce_hmac_key")
            .await
            .context("reading the nonce key from the database")?;
        // Installed before the first request, so nothing counted is lost.
        let metrics = if config.metrics.enabled {
            crate::telemetry::install()
        } else {
            None
        };
        let links = Links::new(config.base_url());
        let sqlite = config.database_url().starts_with("sqlite:");
        Ok(App {
            metrics,
            acme_contexts: acme_contexts(&provisioners, &links),
            provisioners,
            // One process on SQLite: redemptions in memory (see api::nonce).
            nonces: if sqlite {
                NonceService::in_memory(config.acme.nonce_lifetime.0)
            } else {
                NonceService::new(&secret, config.acme.nonce_lifetime.0)
            },
            account_keys: (!sqlite).then(Default::default),
            links,
            authority,
            config,
        })
    }
}

/// Creates the CA in the data directory unless it is there already.
pub fn ensure_ca(config: &Config, passphrase: Option<&str>) -> anyhow::Result<InitOutcome> {
    let options = CaOptions {
        key_type: config.ca.key_type,
        root_common_name: config.ca.root_common_name.clone(),
        intermediate_common_name: config.ca.intermediate_common_name.clone(),
        root_validity: config.ca.root_validity.0,
        intermediate_validity: config.ca.intermediate_validity.0,
    };
    std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
        format!(
            "creating the data directory {}",
            config.server.data_dir.display()
        )
    })?;
    Ok(init_ca(&config.server.data_dir, &options, passphrase)?)
}

/// What `serve` needs besides the app: the server's own certificate.
pub struct ServerTls {
    pub chain_pem: String,
    pub key_pem: String,
}

/// Opens the production parts: the CA (created on first start), the server certificate,
/// the database and the system's or the configured DNS resolver.
pub async fn open(config: Config, passphrase: Option<&str>) -> anyhow::Result<(App, ServerTls)> {
    let data_dir: &Path = &config.server.data_dir;
    if ensure_ca(&config, passphrase)? == InitOutcome::Created {
        tracing::info!(data_dir = %data_dir.display(), "created a new CA");
    }
    let issuer = Issuer::load(data_dir, passphrase)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (chain_pem, key_pem) =
        issuer.ensure_server_certificate(data_dir, &config.server.hostnames, clock.now())?;
    let store = crate::storage::connect(&config.database_url(), config.database.max_connections)
        .await
        .context("opening the database")?;
    let resolver = HickoryResolver::new(config.validation.dns_resolver)
        .map_err(|e| anyhow::anyhow!("validation.dns_resolver: {e}"))?;
    let parts = Parts {
        store,
        issuer: Arc::new(issuer),
        clock,
        resolver: Arc::new(resolver),
    };
    let app = App::assemble(config, parts).await?;
    Ok((app, ServerTls { chain_pem, key_pem }))
}
