//! The directory and newNonce (RFC 8555 §7.1.1, §7.2).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::acme::resources::{Directory, DirectoryMeta};
use crate::app::AppState;

use super::context::Acme;

pub async fn directory(State(state): State<AppState>, acme: Acme) -> Response {
    let app = &state.0;
    let config = &app.config;
    let body = Directory {
        new_nonce: acme.links.new_nonce(),
        new_account: acme.links.new_account(),
        new_order: acme.links.new_order(),
        revoke_cert: Some(acme.links.revoke_cert()),
        key_change: Some(acme.links.key_change()),
        new_authz: Some(acme.links.new_authz()),
        renewal_info: Some(acme.links.renewal_info()),
        meta: DirectoryMeta {
            terms_of_service: config.acme.terms_of_service.clone(),
            website: config.acme.website.clone(),
            caa_identities: config.acme.caa_identities.clone(),
            external_account_required: acme.provisioner.external_account_required,
            profiles: config
                .profiles
                .descriptions()
                .into_iter()
                .map(|(name, description)| (name.to_owned(), description.to_owned()))
                .collect(),
        },
    };
    super::json_response(StatusCode::OK, None, &body)
}

/// RFC 8555 §7.2: HEAD answers 200, GET 204, both with a nonce and `no-store`.
pub async fn new_nonce_head(state: State<AppState>) -> Response {
    nonce_response(state, StatusCode::OK)
}

pub async fn new_nonce_get(state: State<AppState>) -> Response {
    nonce_response(state, StatusCode::NO_CONTENT)
}

fn nonce_response(State(state): State<AppState>, status: StatusCode) -> Response {
    let app = &state.0;
    let mut response = status.into_response();
    let headers = response.headers_mut();
    if let Ok(nonce) = HeaderValue::from_str(&app.nonces.issue(app.authority.now())) {
        headers.insert("replay-nonce", nonce);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
