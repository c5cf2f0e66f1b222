//! Pre-authorization, newAuthz (RFC 8555 §7.4.1): an authorization for one identifier, before
//! any order. The answer is 201 with the authorization and its URL in `Location`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::acme::resources::NewAuthzRequest;
use crate::app::AppState;

use super::context::Acme;

use super::error::ApiError;
use super::extract::AccountPost;

pub async fn new_authz(
    State(state): State<AppState>,
    acme: Acme,
    request: AccountPost<NewAuthzRequest>,
) -> Result<Response, ApiError> {
    let app = &state.0;
    let view = app
        .authority
        .new_authorization(&request.account, &request.payload.identifier)
        .await?;
    Ok(super::json_response(
        StatusCode::CREATED,
        Some(acme.links.authorization(&view.authorization.id)),
        &super::authz::resource(&acme, &view),
    ))
}
