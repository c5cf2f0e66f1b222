//! The CRL listener's routes: plain HTTP (RFC 5280 §4.2.1.13: CRL distribution points are
//! http:// URIs, fetched without TLS so that checking a certificate never needs another
//! certificate to be checked first). It has its own router, served on `crl.listen`.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::AppState;

/// RFC 5280 §4.2.1.13 / RFC 2585 §4.2: the media type of a DER CRL.
const PKIX_CRL: &str = "application/pkix-crl";

/// RFC 2585 §4.1: the media type of a single DER certificate.
const PKIX_CERT: &str = "application/pkix-cert";

/// `GET /crl/<issuer>.crl`, and `GET /ca/<issuer>.crt`: the intermediate, which every leaf's
/// authorityInfoAccess caIssuers URL names (RFC 5280 §4.2.2.1), so that a client missing it
/// can complete the chain.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/crl/{file}", get(crl))
        .route("/ca/{file}", get(ca_certificate))
        .with_state(state)
}

async fn ca_certificate(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let authority = &state.0.authority;
    if format!("/ca/{file}") != authority.ca_certificate_path() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let der = authority.issuer().intermediate_der().to_vec();
    let mut response = (StatusCode::OK, der).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PKIX_CERT));
    response
}

async fn crl(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let Some(name) = file.strip_suffix(".crl") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match state.0.authority.crl(name).await {
        Ok(Some(crl)) => {
            let mut response = (StatusCode::OK, crl.der.clone()).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(PKIX_CRL));
            response
        }
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "signing a CRL to serve failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
