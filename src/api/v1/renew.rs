//! `POST /v1/renew`: the certificate the client presents as its TLS client certificate, issued
//! again (step-ca's `/1.0/renew`). The HTTPS listener asks every client for a certificate but
//! requires none (`server::client_verifier`), and hands the verified chain to handlers as
//! axum-server's `TlsInfo`.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use axum_server::tls::TlsInfo;
use serde::Deserialize;

use crate::app::AppState;

use super::{Caller, JsonBody, V1Error};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewBody {
    /// A CSR for a new key (PEM or base64 DER), asking for exactly the same names; absent:
    /// the certificate keeps its key.
    pub csr: Option<String>,
}

/// `201` with the new certificate.
pub async fn renew(
    State(state): State<AppState>,
    Caller(caller): Caller,
    tls: Option<Extension<Arc<TlsInfo>>>,
    JsonBody(body): JsonBody<RenewBody>,
) -> Result<Response, V1Error> {
    let chain = tls.map_or_else(Vec::new, |Extension(info)| info.peer_certificates.clone());
    let csr_der = body.csr.as_deref().map(super::decode_csr).transpose()?;
    let issued = state
        .0
        .authority
        .direct_renew(&chain, csr_der, caller)
        .await?;
    Ok(super::issued(&issued))
}
