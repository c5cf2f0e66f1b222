//! The HTTP face of the ACME server (axum). It turns requests into verified, typed calls on
//! the authority and errors into problem documents; it holds no business rules.

pub mod account;
pub mod account_keys;
pub mod admin;
pub mod authz;
pub mod certificate;
pub mod challenge;
pub mod context;
pub mod crl;
pub mod directory;
pub mod error;
pub mod extract;
pub mod key_change;
pub mod links;
pub mod new_authz;
pub mod nonce;
pub mod ops;
pub mod order;
pub mod orders;
pub mod renewal_info;
pub mod request_id;
pub mod revoke;
pub mod v1;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};

use crate::acme::Problem;
use crate::app::AppState;
use error::ApiError;

/// The one route table. The default ACME provisioner answers at `/directory` and under
/// `/acme/`; every ACME provisioner, the default one included, at `/acme/<name>/`. The direct
/// API's routes are in [`v1::router`].
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/directory",
            get(directory::directory).fallback(|m: Method| method_not_allowed(m, "GET, HEAD")),
        )
        .nest("/acme", acme_routes())
        .nest("/acme/{provisioner}", acme_routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), acme_headers))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            context::resolve,
        ))
        // After the layers: the direct API and the operations endpoints get no nonces, no
        // directory link and no provisioner routing.
        .merge(v1::router())
        .merge(ops::router())
        // Around everything: request metrics, and outermost the request id, so every log line
        // of a request carries it.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_id::audit_refusals,
        ))
        .layer(middleware::from_fn(count_requests))
        .layer(middleware::from_fn(request_id::request_id))
        .with_state(state)
}

/// `mayfly_http_requests_total` and `mayfly_http_request_duration_seconds`, labelled with the
/// route template (`/acme/order/{id}`), never the raw path: the label set stays small.
async fn count_requests(req: Request, next: Next) -> Response {
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("mayfly_http_requests_total", "endpoint" => endpoint.clone(), "status" => status).increment(1);
    metrics::histogram!("mayfly_http_request_duration_seconds", "endpoint" => endpoint)
        .record(started.elapsed());
    response
}

/// The resources of one ACME provisioner, relative to its root.
fn acme_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/directory",
            get(directory::directory).fallback(|m: Method| method_not_allowed(m, "GET, HEAD")),
        )
        .route(
            "/new-nonce",
            get(directory::new_nonce_get)
                .head(directory::new_nonce_head)
                .fallback(|m: Method| method_not_allowed(m, "GET, HEAD")),
        )
        .route("/new-account", post_only(account::new_account))
        .route("/account/{id}", post_only(account::account))
        .route("/account/{id}/orders", post_only(orders::orders))
        .route("/key-change", post_only(key_change::key_change))
        .route("/new-order", post_only(order::new_order))
        .route("/order/{id}", post_only(order::order))
        .route("/order/{id}/finalize", post_only(order::finalize))
        .route("/authz/{id}", post_only(authz::authorization))
        .route("/new-authz", post_only(new_authz::new_authz))
        .route("/chall/{id}", post_only(challenge::challenge))
        .route("/cert/{id}", post_only(certificate::certificate))
        .route("/revoke-cert", post_only(revoke::revoke_cert))
        .route(
            "/renewal-info/{id}",
            get(renewal_info::renewal_info)
                .post(renewal_info::renewal_info_post)
                .fallback(|m: Method| method_not_allowed(m, "GET, HEAD, POST")),
        )
}

fn post_only<H, T>(handler: H) -> MethodRouter<AppState>
where
    H: axum::handler::Handler<T, AppState>,
    T: 'static,
{
    post(handler).fallback(|m: Method| method_not_allowed(m, "POST"))
}

/// RFC 8555 §6.5: a fresh nonce on every response to a POST, errors included;
/// §7.1: a `Link` to the directory on every resource.
async fn acme_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let is_post = req.method() == Method::POST;
    let directory = req
        .extensions()
        .get::<context::Acme>()
        .map(|acme| acme.links.directory())
        .unwrap_or_else(|| state.0.links.directory());
    let mut response = next.run(req).await;
    let app = &state.0;
    if is_post {
        let now = app.authority.now();
        let bad_nonce = response
            .extensions()
            .get::<error::BadNonceAnswer>()
            .is_some();
        let nonce = if bad_nonce {
            app.nonces.issue_for_retry(now)
        } else {
            app.nonces.issue(now)
        };
        let headers = response.headers_mut();
        if let Ok(nonce) = HeaderValue::from_str(&nonce) {
            headers.insert("replay-nonce", nonce);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let headers = response.headers_mut();
    if let Ok(link) = HeaderValue::from_str(&format!("<{}>;rel=\"index\"", directory)) {
        headers.append(header::LINK, link);
    }
    response
}

/// RFC 9110 §15.5.6: a 405 lists the methods the resource does support in `Allow`.
async fn method_not_allowed(method: Method, allow: &'static str) -> Response {
    let mut response = ApiError::from(
        Problem::malformed(format!("method {method} is not allowed here")).with_status(405),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

async fn not_found() -> ApiError {
    ApiError::from(Problem::not_found("no such resource"))
}

/// A JSON response with an optional `Location`.
pub(crate) fn json_response<T: serde::Serialize>(
    status: StatusCode,
    location: Option<String>,
    body: &T,
) -> Response {
    let bytes = match serde_json::to_vec(body) {
        Ok(bytes) => bytes,
        Err(e) => {
            return ApiError::from(crate::authority::Error::Store(
                crate::storage::StoreError::Other(Box::new(e)),
            ))
            .into_response();
        }
    };
    let mut response = (status, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    response
}

/// Seconds a client should wait before polling a resource that is `processing` again.
pub(crate) const RETRY_AFTER_SECONDS: u64 = 1;

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}
