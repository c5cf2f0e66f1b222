//! The admin API (issue 7): JSON over HTTPS on its own listener, for operators.
//!
//! The listener requires a client certificate at the handshake (`server::admin`); the
//! [`require_admin`] middleware then admits only certificates with Mayfly's admin role
//! (`issuer::admin`) and answers 403 otherwise, before any handler runs. Errors are problem
//! documents (RFC 7807) with stable `urn:mayfly:admin:error:*` types. Every change is logged
//! under the `audit` target with the admin's certificate as the actor.

mod accounts;
mod audit_log;
mod ca;
mod certificates;
mod eab;
pub mod openapi;
pub mod problem;
mod wire;

pub use wire::rfc3339 as wire_time;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum_server::tls::TlsInfo;

use crate::app::AppState;
use problem::AdminProblem;

/// The admin API's routes, behind the role check: exactly the [`endpoints`] table, which the
/// OpenAPI document is also made from.
pub fn router(state: AppState) -> Router {
    endpoints()
        .into_iter()
        .fold(Router::new(), |router, endpoint| {
            // Two methods on one path merge into one method router.
            router.route(endpoint.path, endpoint.route)
        })
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), require_admin))
        .layer(middleware::from_fn(crate::api::request_id::request_id))
        .with_state(state)
}

/// One admin endpoint: its route, and what the OpenAPI document says about it.
pub struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// Query parameters: name and description.
    pub query: &'static [(&'static str, &'static str)],
    /// JSON body members: name, JSON type, description; `None` for no body.
    pub body: Option<&'static [(&'static str, &'static str, &'static str)]>,
    /// The success status.
    pub success: u16,
    /// The problem statuses besides 403 (every endpoint may answer 403).
    pub problems: &'static [u16],
    route: MethodRouter<AppState>,
}

const PAGING: [(&str, &str); 2] = [
    ("cursor", "the `next` of the previous page"),
    ("limit", "page size, 1 to 1000 (default 100)"),
];

/// Every admin endpoint, in the order of the OpenAPI document.
pub fn endpoints() -> Vec<Endpoint> {
    let endpoint = |method, path, summary, route| Endpoint {
        method,
        path,
        summary,
        query: &[],
        body: None,
        success: 200,
        problems: &[],
        route,
    };
    vec![
        endpoint(
            "get",
            "/admin/status",
            "CA fingerprints and expiries; counts of certificates issued, active, expired, revoked, and of accounts",
            get(ca::status),
        ),
        Endpoint {
            query: &[
                (
                    "name",
                    "a name among the identifiers; `*` matches any run of characters",
                ),
                ("account", "an account id"),
                ("status", "active, expired or revoked"),
                (
                    "expiring_before",
                    "RFC 3339 time: notAfter earlier than this",
                ),
                PAGING[0],
                PAGING[1],
            ],
            problems: &[400],
            ..endpoint(
                "get",
                "/admin/certificates",
                "Certificates, oldest first, filtered and paginated",
                get(certificates::list),
            )
        },
        Endpoint {
            problems: &[400, 404],
            ..endpoint(
                "get",
                "/admin/certificates/{serial}",
                "One certificate, with its chain (PEM)",
                get(certificates::one),
            )
        },
        Endpoint {
            body: Some(&[(
                "reason",
                "string",
                "RFC 5280 CRLReason name (keyCompromise, superseded, …) or number; default unspecified",
            )]),
            problems: &[400, 404, 409],
            ..endpoint(
                "post",
                "/admin/certificates/{serial}/revoke",
                "Revoke a certificate; the CRL is signed again at once",
                post(certificates::revoke),
            )
        },
        Endpoint {
            body: Some(&[
                ("action", "string", "move, renew-now or reset"),
                ("start", "string", "RFC 3339 start of the window (move)"),
                ("end", "string", "RFC 3339 end of the window (move)"),
            ]),
            problems: &[400, 404],
            ..endpoint(
                "post",
                "/admin/renewal-windows/{certificate}",
                "Move a certificate's ARI renewal window (RFC 9773); the certificate is a serial or an ARI id",
                post(certificates::move_window),
            )
        },
        Endpoint {
            query: &PAGING,
            problems: &[400],
            ..endpoint(
                "get",
                "/admin/accounts",
                "ACME accounts, oldest first, paginated",
                get(accounts::list),
            )
        },
        Endpoint {
            problems: &[404, 409],
            ..endpoint(
                "post",
                "/admin/accounts/{id}/deactivate",
                "Deactivate an account (RFC 8555 §7.3.6)",
                post(accounts::deactivate),
            )
        },
        endpoint(
            "get",
            "/admin/eab-keys",
            "External Account Binding keys, without their HMAC keys",
            get(eab::list),
        ),
        Endpoint {
            body: Some(&[
                ("label", "string", "a note for the operator"),
                ("reusable", "boolean", "may bind any number of accounts"),
                (
                    "provisioner",
                    "string",
                    "the ACME provisioner whose policy bound accounts get",
                ),
            ]),
            success: 201,
            problems: &[400],
            ..endpoint(
                "post",
                "/admin/eab-keys",
                "Create an EAB key; the answer holds its HMAC key, shown only this once",
                post(eab::add),
            )
        },
        Endpoint {
            problems: &[404, 409],
            ..endpoint(
                "post",
                "/admin/eab-keys/{kid}/revoke",
                "Stop an EAB key from binding new accounts",
                post(eab::revoke),
            )
        },
        endpoint(
            "get",
            "/admin/ca",
            "The root and intermediate certificates and the chain (PEM)",
            get(ca::chain),
        ),
        endpoint(
            "post",
            "/admin/crl",
            "Sign a fresh CRL now",
            post(ca::regenerate_crl),
        ),
        Endpoint {
            query: &[
                (
                    "kind",
                    "e.g. certificate.issued, auth.refused, admin.action",
                ),
                ("actor", "e.g. account:<id>, admin:<subject>, ip:<address>"),
                (
                    "object",
                    "e.g. serial:<hex>, account:<id>, path:<request path>",
                ),
                ("since", "RFC 3339 time: at or after"),
                ("until", "RFC 3339 time: before"),
                ("cursor", "the `next` of the previous page"),
                ("limit", "page size, 1 to 1000 (default 100)"),
            ],
            problems: &[400],
            ..endpoint(
                "get",
                "/admin/audit",
                "The audit log (append-only), newest first, filtered and paginated",
                get(audit_log::list),
            )
        },
        endpoint(
            "get",
            "/admin/openapi.json",
            "This document",
            get(openapi::document),
        ),
    ]
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
async fn require_admin(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let leaf = request
        .extensions()
        .get::<Arc<TlsInfo>>()
        .and_then(|info| info.peer_certificates.first().cloned());
    let Some(leaf) = leaf else {
        return AdminProblem::forbidden("the admin API requires a client certificate")
            .into_response();
    };
    let actor = actor(leaf.as_ref());
    // The request-id middleware opened the request's audit context: events this request
    // causes (a revocation, say) name the admin as their actor.
    crate::authority::audit::update(|context| context.admin = Some(actor.to_string()));
    if !crate::issuer::admin::has_admin_role(leaf.as_ref()) {
        // An authorization failure: recorded, with the certificate that tried.
        let authority = &state.0.authority;
        let event = crate::authority::audit::event(
            crate::authority::audit::AuditKind::AuthRefused,
            &authority.request_actor(),
            crate::authority::audit::object("path", request.uri().path()),
            false,
            serde_json::json!({"reason": "the client certificate has no admin role"}),
            authority.now(),
        );
        crate::authority::audit::log(&event);
        authority.audit(event).await;
        return AdminProblem::forbidden(
            "the client certificate does not carry Mayfly's admin role; \
             use a certificate made by `mayfly admin bootstrap`",
        )
        .into_response();
    }
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

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> AdminProblem {
    AdminProblem::method_not_allowed(format!(
        "{method} is not allowed on {}; see /admin/openapi.json",
        uri.path()
    ))
}

/// Records a change in the audit log (and the log): who did what to which object.
pub(crate) async fn audit(state: &AppState, actor: &Actor, action: &str, object: &str) {
    let authority = &state.0.authority;
    let event = crate::authority::audit::admin_action(
        &actor.to_string(),
        action,
        object.to_owned(),
        serde_json::json!({}),
        authority.now(),
    );
    crate::authority::audit::log(&event);
    authority.audit(event).await;
}
