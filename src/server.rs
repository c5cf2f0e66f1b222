//! The HTTPS listener (rustls), graceful shutdown and background tasks (the periodic jobs
//! of [`crate::jobs`], CRL signing, metrics upkeep).
//!
//! The listener asks clients for a certificate but requires none ([`client_auth`]): ACME
//! clients present none, and `POST /v1/renew` is authenticated by the certificate it renews.

pub mod admin;
pub mod client_auth;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::app::{App, AppState, ServerTls};
use crate::config::Config;

/// How long in-flight requests may finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub async fn serve(app: App, tls: ServerTls) -> anyhow::Result<()> {
    let listen = app.config.server.listen;
    let directory = app.links.directory();
    let root = std::path::absolute(app.config.server.data_dir.join("root-ca.pem"))
        .unwrap_or_else(|_| app.config.server.data_dir.join("root-ca.pem"));
    let rustls = rustls_config(&tls, app.authority.issuer().root_pem())?;
    let state = AppState(Arc::new(app));
    let router = crate::api::router(state.clone());

    let handle: Handle<std::net::SocketAddr> = Handle::new();
    let admin_handle: Handle<std::net::SocketAddr> = Handle::new();
    tokio::spawn(shutdown_on_signal(handle.clone(), admin_handle.clone()));
    let admin_url = start_admin(&state, &tls, admin_handle)?;
    let jobs = crate::jobs::Jobs::new(&state)?;
    let jobs_task = tokio::spawn(jobs.clone().run());
    let crl_listen = state.0.config.crl.listen;
    let crl_listener = tokio::net::TcpListener::bind(crl_listen)
        .await
        .with_context(|| format!("binding the CRL listener (crl.listen) to {crl_listen}"))?;
    tokio::spawn(serve_crls(crl_listener, state.clone()));
    tokio::spawn(regenerate_crls(state.clone()));
    if let Some(metrics) = state.0.metrics.clone() {
        tokio::spawn(metrics_upkeep(metrics));
    }

    let server = axum_server::bind_rustls(listen, RustlsConfig::from_config(Arc::new(rustls)))
        .handle(handle.clone())
        // The peer address feeds the validator chain's `source_cidrs` (api::extract).
        .serve(router.into_make_service_with_connect_info::<std::net::SocketAddr>());
    let ready = handle.clone();
    let crl_url = state.0.authority.crl_url();
    tokio::spawn(async move {
        if ready.listening().await.is_some() {
            println!("Mayfly is ready.");
            println!("  directory:  {directory}");
            println!("  trust root: {}", root.display());
            println!("  CRL:        {crl_url}");
            if let Some(admin_url) = admin_url {
                println!("  admin API:  {admin_url} (client certificate required)");
            }
        }
    });
    let served = server.await.with_context(|| format!("serving on {listen}"));
    // Another replica takes the jobs over at once instead of waiting for the leases to end.
    jobs_task.abort();
    jobs.release().await;
    // Audit events still queued reach the database before the process ends.
    state.0.authority.flush_audit().await;
    served?;
    tracing::info!("stopped");
    Ok(())
}

fn rustls_config(tls: &ServerTls, root_pem: &str) -> anyhow::Result<rustls::ServerConfig> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(tls.chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .context("reading the server certificate")?;
    let key =
        PrivateKeyDer::from_pem_slice(tls.key_pem.as_bytes()).context("reading the server key")?;
    let mut config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(client_auth::ClientCertificates::new(root_pem)?)
        .with_single_cert(chain, key)
        .context("the server certificate and key do not fit together")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Binds the admin listener (issue 7) when `admin.enabled`, and serves it in the background;
/// returns its URL.
fn start_admin(
    state: &AppState,
    tls: &ServerTls,
    handle: Handle<std::net::SocketAddr>,
) -> anyhow::Result<Option<String>> {
    let admin = &state.0.config.admin;
    if !admin.enabled {
        return Ok(None);
    }
    let config = admin::rustls_config(state, tls)?;
    let listener = std::net::TcpListener::bind(admin.listen).with_context(|| {
        format!(
            "binding the admin listener (admin.listen) to {}",
            admin.listen
        )
    })?;
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = admin::serve(state, listener, config, handle).await {
            tracing::error!(error = %format!("{e:#}"), "the admin listener stopped");
        }
    });
    Ok(Some(format!("https://{}/admin/", admin.listen)))
}

async fn shutdown_on_signal(
    handle: Handle<std::net::SocketAddr>,
    admin_handle: Handle<std::net::SocketAddr>,
) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
    admin_handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
    handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
}

/// Folds the histograms' pending samples in, whether or not anyone scrapes `/metrics`.
async fn metrics_upkeep(metrics: metrics_exporter_prometheus::PrometheusHandle) {
    let mut tick = tokio::time::interval(crate::telemetry::UPKEEP_INTERVAL);
    loop {
        tick.tick().await;
        metrics.run_upkeep();
    }
}

/// The plain-HTTP CRL listener; it stops with the process.
async fn serve_crls(listener: tokio::net::TcpListener, state: AppState) {
    let router = crate::api::crl::router(state);
    if let Err(e) = axum::serve(listener, router).await {
        tracing::error!(error = %e, "the CRL listener stopped");
    }
}

/// Signs a CRL at start-up and then every `crl.regenerate_every`, from the database, so that a
/// replica also publishes revocations recorded by another one.
async fn regenerate_crls(state: AppState) {
    let mut tick = tokio::time::interval(state.0.config.crl.regenerate_every.as_std());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = state.0.authority.regenerate_crl().await {
            tracing::error!(error = %e, "signing the CRL failed");
        }
    }
}

/// `mayfly healthcheck`: asks the listener itself for `/ready` (or `/health` when `live`),
/// trusting the data directory's root. Not `server.external_url` (a proxy, or a name the
/// container may not resolve); an unspecified address (0.0.0.0, ::) is asked on loopback,
/// which the server certificate always names. `Err` says what failed, with the URL.
pub async fn healthcheck(config: &Config, live: bool) -> Result<(), String> {
    let path = if live { "/health" } else { "/ready" };
    let mut address = config.server.listen;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let url = format!("https://{address}{path}");
    let fail = |e: &dyn std::fmt::Display| format!("{url}: {e}");
    let root = std::fs::read(config.server.data_dir.join("root-ca.pem"))
        .map_err(|e| fail(&format!("reading the root certificate: {e}")))?;
    let root = reqwest::Certificate::from_pem(&root).map_err(|e| fail(&e))?;
    let client = reqwest::Client::builder()
        .tls_certs_only([root])
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| fail(&e))?;
    let response = client.get(&url).send().await.map_err(|e| fail(&e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    Err(fail(&format!("{status} {body}")))
}
