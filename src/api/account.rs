//! newAccount and the account resource (RFC 8555 §7.3): creation (with External Account
//! Binding, §7.3.4), update (§7.3.2) and deactivation (§7.3.6).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::acme::Problem;
use crate::acme::resources::{AccountResource, AccountUpdateRequest, NewAccountRequest};
use crate::app::AppState;

use super::context::{Acme, ResourceId};
use crate::authority::account::{AccountOutcome, Binding};
use crate::jose::ParsedEab;
use crate::storage::Account;

use super::error::ApiError;
use super::extract::{AccountPost, JwkPost, Payload};
use super::links::Links;

pub async fn new_account(
    State(state): State<AppState>,
    acme: Acme,
    request: JwkPost<NewAccountRequest>,
) -> Result<Response, ApiError> {
    let app = &state.0;
    // RFC 8555 §7.3.4: the binding's url is the newAccount URL and its payload the key
    // this request is signed with.
    let presented = request
        .payload
        .external_account_binding
        .as_ref()
        .map(|binding| ParsedEab::parse(binding, &acme.links.new_account(), &request.key))
        .transpose()
        .map_err(|e| Problem::malformed(e.to_string()))?;
    let binding = Binding {
        presented: presented.as_ref(),
        required: acme.provisioner.external_account_required,
        provisioner: acme.name(),
        client: request.client,
    };
    let (account, outcome) = app
        .authority
        .new_account(&request.key, &request.payload, binding)
        .await?;
    let status = match outcome {
        AccountOutcome::Created => StatusCode::CREATED,
        AccountOutcome::Existing => StatusCode::OK,
    };
    Ok(super::json_response(
        status,
        Some(acme.links.account(&account.id)),
        &resource(&acme.links, &account),
    ))
}

/// POST-as-GET reads the account; a JSON payload updates the contacts or deactivates it.
pub async fn account(
    State(state): State<AppState>,
    acme: Acme,
    ResourceId(id): ResourceId,
    request: AccountPost<Payload>,
) -> Result<Response, ApiError> {
    let app = &state.0;
    if request.account.id != id {
        return Err(Problem::unauthorized("the request is signed by another account").into());
    }
    let account = match request.payload {
        Payload::Empty => request.account,
        Payload::Json(value) => {
            let update: AccountUpdateRequest = serde_json::from_value(value)
                .map_err(|e| Problem::malformed(format!("the account update is not valid: {e}")))?;
            app.authority
                .update_account(&request.account, &update)
                .await?
        }
    };
    Ok(super::json_response(
        StatusCode::OK,
        Some(acme.links.account(&id)),
        &resource(&acme.links, &account),
    ))
}

pub(super) fn resource(links: &Links, account: &Account) -> AccountResource {
    AccountResource {
        status: account.status,
        contact: account.contact.clone(),
        orders: Some(links.account_orders(&account.id)),
        key: account.jwk.clone(),
        created_at: super::rfc3339(account.created_at),
    }
}
