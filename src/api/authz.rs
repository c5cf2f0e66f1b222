//! The authorization resource (RFC 8555 §7.5).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::acme::Problem;
use crate::acme::identifier::IdentifierJson;
use crate::acme::resources::AuthorizationResource;
use crate::app::AppState;

use super::context::{Acme, ResourceId};
use crate::authority::order::AuthorizationView;

use super::error::ApiError;
use super::extract::{AccountPost, Payload};

pub async fn authorization(
    State(state): State<AppState>,
    acme: Acme,
    ResourceId(id): ResourceId,
    request: AccountPost<Payload>,
) -> Result<Response, ApiError> {
    let app = &state.0;
    if let Payload::Json(_) = request.payload {
        return Err(Problem::malformed(
            "authorization deactivation is not supported by this server yet; use POST-as-GET",
        )
        .into());
    }
    let view = app.authority.authorization(&request.account, &id).await?;
    Ok(super::json_response(
        StatusCode::OK,
        Some(acme.links.authorization(&id)),
        &resource(&acme, &view),
    ))
}

pub fn resource(acme: &Acme, view: &AuthorizationView) -> AuthorizationResource {
    let authz = &view.authorization;
    // RFC 8555 §7.1.4: a wildcard authorization names the base domain and says `wildcard`;
    // it is stored with its `*.` so that it is never mistaken for the base name's own.
    let mut identifier = IdentifierJson::from(&authz.identifier);
    if let Some(base) = identifier.value.strip_prefix("*.") {
        identifier.value = base.to_owned();
    }
    AuthorizationResource {
        identifier,
        status: view.status,
        expires: super::rfc3339(authz.expires),
        challenges: authz
            .challenges
            .iter()
            .map(|c| super::challenge::resource(acme, c))
            .collect(),
        wildcard: authz.identifier.is_wildcard().then_some(true),
    }
}
