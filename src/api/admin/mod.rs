//! The admin API (issue 7): JSON over HTTPS on its own listener, for operators.
//!
//! The listener requires a client certificate at the handshake (`server::admin`); the
//! [`require_admin`] middleware then admits only certificates with Mayfly's admin role
//! (`issuer::admin`) and answers 403 otherwise, before any handler runs. Errors are problem
//! documents (RFC 7807) with stable `urn:mayfly:admin:error:*` types. Every change is logged
//! under the `audit` target with the admin's certificate as the actor.

mod accounts;
mod certificates;
mod ca;
mod eab;
pub mod problem;
mod wire;

pub use wire::rfc3339 as wire_time;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum_server::tls::TlsInfo;

use crate::app::AppState;
use problem::AdminProblem;

/// The admin API's routes, behind the role check.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/admin/status", get(ca::status))
        .route("/admin/ca", get(ca::chain))
        .route("/admin/crl", post(ca::regenerate_crl))
        .route("/admin/certificates", get(certificates::list))
        .route("/admin/certificates/{serial}", get(certificates::one))
        .route(
            "/admin/certificates/{serial}/revoke",
            post(certificates::revoke),
        )
        .route(
            "/admin/renewal-windows/{certificate}",
            post(certificates::move_window),
        )
        .route("/admin/accounts", get(accounts::list))
        .route(
            "/admin/accounts/{id}/deactivate",
            post(accounts::deactivate),
        )
        .route("/admin/eab-keys", get(eab::list).post(eab::add))
        .route("/admin/eab-keys/{kid}/revoke", post(eab::revoke))
        .fallback(not_found)
        .layer(middleware::from_fn(require_admin))
        .layer(middleware::from_fn(crate::api::request_id::request_id))
        .with_state(state)
}

/// The admin who sent the request: their certificate's subject and serial, for the audit log.
#[derive(Clone, Debug)]
pub struct Actor {
    pub subject: String,
    pub serial: String,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (serial {})", self.subject, self.serial)
    }
}

/// Admits a request only if its TLS client certificate has the admin role. The handshake
/// already proved that the client holds the certificate's key and that it chains to the
/// admin CA; a certificate from the same CA without the role (an ACME client's) gets 403.
async fn require_admin(mut request: Request, next: Next) -> Response {
    let leaf = request
        .extensions()
        .get::<Arc<TlsInfo>>()
        .and_then(|info| info.peer_certificates.first().cloned());
    let Some(leaf) = leaf else {
        return AdminProblem::forbidden("the admin API requires a client certificate")
            .into_response();
    };
    if !crate::issuer::admin::has_admin_role(leaf.as_ref()) {
        return AdminProblem::forbidden(
            "the client certificate does not carry Mayfly's admin role; \
             use a certificate made by `mayfly admin bootstrap`",
        )
        .into_response();
    }
    let actor = actor(leaf.as_ref());
    request.extensions_mut().insert(actor);
    next.run(request).await
}

fn actor(der: &[u8]) -> Actor {
    use x509_parser::prelude::FromDer;
    match x509_parser::certificate::X509Certificate::from_der(der) {
        Ok((_, cert)) => Actor {
            subject: cert.subject().to_string(),
            serial: crate::issuer::serial_hex(cert.raw_serial()),
        },
        Err(_) => Actor {
            subject: "(unparsable)".into(),
            serial: "-".into(),
        },
    }
}

async fn not_found(uri: axum::http::Uri) -> AdminProblem {
    AdminProblem::not_found(format!("there is no admin endpoint {}", uri.path()))
}

/// Logs a change under the `audit` target: who did what to which object.
pub(crate) fn audit(actor: &Actor, action: &str, object: &str) {
    tracing::info!(target: "audit", actor = %actor, action, object, "admin action");
}
