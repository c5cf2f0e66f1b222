//! newOrder, the order resource and finalize (RFC 8555 §7.4).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::acme::OrderStatus;
use crate::acme::identifier::IdentifierJson;
use crate::acme::resources::{FinalizeRequest, NewOrderRequest, OrderResource};
use crate::app::AppState;

use super::context::{Acme, ResourceId};
use crate::authority::order::OrderView;

use super::error::ApiError;
use super::extract::{AccountPost, PostAsGet};
use super::links::Links;

pub async fn new_order(
    State(state): State<AppState>,
    acme: Acme,
    request: AccountPost<NewOrderRequest>,
) -> Result<Response, ApiError> {
    let app = &state.0;
    let view = app
        .authority
        .new_order(&request.account, &request.payload, &request.requester)
        .await?;
    Ok(respond(&acme.links, StatusCode::CREATED, &view))
}

pub async fn order(
    State(state): State<AppState>,
    acme: Acme,
    ResourceId(id): ResourceId,
    request: PostAsGet,
) -> Result<Response, ApiError> {
    let app = &state.0;
    let view = app.authority.order(&request.account, &id).await?;
    Ok(respond(&acme.links, StatusCode::OK, &view))
}

pub async fn finalize(
    State(state): State<AppState>,
    acme: Acme,
    ResourceId(id): ResourceId,
    request: AccountPost<FinalizeRequest>,
) -> Result<Response, ApiError> {
    let app = &state.0;
    let view = app
        .authority
        .finalize(
            &request.account,
            &id,
            &request.payload.csr,
            &request.requester,
        )
        .await?;
    Ok(respond(&acme.links, StatusCode::OK, &view))
}

/// The order as JSON, with its URL in `Location` and `Retry-After` while it is processing.
fn respond(links: &Links, status: StatusCode, view: &OrderView) -> Response {
    let mut response = super::json_response(
        status,
        Some(links.order(&view.order.id)),
        &resource(links, view),
    );
    if view.status == OrderStatus::Processing {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(super::RETRY_AFTER_SECONDS),
        );
    }
    response
}

fn resource(links: &Links, view: &OrderView) -> OrderResource {
    let order = &view.order;
    OrderResource {
        status: view.status,
        expires: super::rfc3339(order.expires),
        identifiers: order.identifiers.iter().map(IdentifierJson::from).collect(),
        not_before: order.not_before.map(super::rfc3339),
        not_after: order.not_after.map(super::rfc3339),
        profile: order.profile.clone(),
        error: order.error.clone(),
        authorizations: order
            .authorization_ids
            .iter()
            .map(|id| links.authorization(id))
            .collect(),
        finalize: links.finalize(&order.id),
        certificate: order
            .certificate_id
            .as_deref()
            .map(|id| links.certificate(id)),
        replaces: order.replaces.clone(),
    }
}
