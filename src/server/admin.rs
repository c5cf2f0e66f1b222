//! The admin listener (issue 7): HTTPS with a client certificate required at the handshake,
//! verified against the admin CA (`admin.ca_file`, default Mayfly's root) by rustls's
//! `WebPkiClientVerifier` (clientAuth purpose, validity, chain). A client without one never
//! completes the handshake; the role is checked per request by `api::admin`.

use std::sync::Arc;

use anyhow::Context;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::app::{AppState, ServerTls};

/// The admin listener's TLS settings: its own certificate (`admin.cert_file`/`key_file`, or
/// the main listener's) and the CA admin clients must chain to.
pub fn rustls_config(state: &AppState, main: &ServerTls) -> anyhow::Result<rustls::ServerConfig> {
    let admin = &state.0.config.admin;
    let (chain_pem, key_pem) = match (&admin.cert_file, &admin.key_file) {
        (Some(cert), Some(key)) => (
            std::fs::read_to_string(cert)
                .with_context(|| format!("reading admin.cert_file {}", cert.display()))?,
            std::fs::read_to_string(key)
                .with_context(|| format!("reading admin.key_file {}", key.display()))?,
        ),
        _ => (main.chain_pem.clone(), main.key_pem.clone()),
    };
    let ca_pem = match &admin.ca_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading admin.ca_file {}", path.display()))?,
        None => state.0.authority.issuer().root_pem().to_owned(),
    };
    config(&chain_pem, &key_pem, &ca_pem)
}

/// A server config presenting `chain_pem`/`key_pem` that requires a client certificate
/// chaining to a certificate of `ca_pem`.
pub fn config(
    chain_pem: &str,
    key_pem: &str,
    ca_pem: &str,
) -> anyhow::Result<rustls::ServerConfig> {
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.context("reading the admin CA")?)
            .context("the admin CA is not a trust anchor")?;
    }
    if roots.is_empty() {
        anyhow::bail!("the admin CA file holds no certificate");
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .context("building the admin client certificate verifier")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .context("reading the admin listener's certificate")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .context("reading the admin listener's key")?;
    let mut config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .context("the admin listener's certificate and key do not fit together")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Serves the admin API on `listener` until `handle` shuts it down.
pub async fn serve(
    state: AppState,
    listener: std::net::TcpListener,
    config: rustls::ServerConfig,
    handle: Handle<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let router = crate::api::admin::router(state);
    listener
        .set_nonblocking(true)
        .context("setting the admin listener non-blocking")?;
    axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(Arc::new(config)))
        .context("starting the admin listener")?
        .handle(handle)
        .serve(router.into_make_service())
        .await
        .context("serving the admin API")
}
