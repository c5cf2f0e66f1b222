//! newAccount and the account resource (RFC 8555 §7.3).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use crate::acme::Problem;
use crate::acme::resources::{AccountResource, NewAccountRequest};
use crate::app::AppState;
use crate::authority::account::AccountOutcome;
use crate::storage::Account;

use super::error::ApiError;
use super::extract::{AccountPost, JwkPost, Payload};
use super::links::Links;

pub async fn new_account(
    State(state): State<AppState>,
    request: JwkPost<NewAccountRequest>,
) -> Result<Response, ApiError> {
    let app = &state.0;
    let (account, outcome) = app
        .authority
        .new_account(&request.key, &request.payload)
        .await?;
    let status = match outcome {
        AccountOutcome::Created => StatusCode::CREATED,
        AccountOutcome::Existing => StatusCode::OK,
    };
    Ok(super::json_response(
        status,
        Some(app.links.account(&account.id)),
        &resource(&app.links, &account),
    ))
}

pub async fn account(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: AccountPost<Payload>,
) -> Result<Response, ApiError> {
    let app = &state.0;
    if request.account.id != id {
        return Err(Problem::unauthorized("the request is signed by another account").into());
    }
    match &request.payload {
        Payload::Empty => {}
        Payload::Json(value) if value.as_object().is_some_and(|o| o.is_empty()) => {}
        Payload::Json(_) => {
            return Err(Problem::malformed(
                "account updates (contact, deactivation) are not supported by this server yet",
            )
            .into());
        }
    }
    Ok(super::json_response(
        StatusCode::OK,
        Some(app.links.account(&id)),
        &resource(&app.links, &request.account),
    ))
}

fn resource(_links: &Links, account: &Account) -> AccountResource {
    AccountResource {
        status: account.status,
        contact: account.contact.clone(),
        orders: None,
        key: account.jwk.clone(),
        created_at: super::rfc3339(account.created_at),
    }
}
