//! The challenge resource (RFC 8555 §7.5.1): POST `{}` to start validation, POST-as-GET to
//! read it.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::acme::resources::ChallengeResource;
use crate::acme::{ChallengeStatus, Problem};
use crate::app::AppState;
use crate::authority::challenge::ChallengeAnswer;
use crate::validation::ChallengeType;

use super::context::{Acme, ResourceId};
use crate::storage::Challenge;

use super::error::ApiError;
use super::extract::{AccountPost, Payload};

pub async fn challenge(
    State(state): State<AppState>,
    acme: Acme,
    ResourceId(id): ResourceId,
    request: AccountPost<Payload>,
) -> Result<Response, ApiError> {
    let app = &state.0;
    let challenge = match request.payload {
        Payload::Empty => app.authority.challenge(&request.account, &id).await?,
        // RFC 8555 §7.5.1: the client sends an empty object; any other fields are ignored.
        // RFC 9447 §3: a tkauth-01 answer carries the token, as `atc` (its tkauth-type);
        // `tkauth` is accepted too.
        Payload::Json(value) => {
            let token = match ["atc", "tkauth"].iter().find_map(|f| value.get(*f)) {
                None => None,
                Some(serde_json::Value::String(token)) => Some(token.clone()),
                Some(_) => {
                    return Err(Problem::malformed("the tkauth-01 token must be a string").into());
                }
            };
            let answer = ChallengeAnswer { token };
            app.authority
                .respond_to_challenge(&request.account, &id, answer)
                .await?
        }
    };
    let mut response = super::json_response(StatusCode::OK, None, &resource(&acme, &challenge));
    let headers = response.headers_mut();
    let up = format!(
        "<{}>;rel=\"up\"",
        acme.links.authorization(&challenge.authorization_id)
    );
    if let Ok(link) = HeaderValue::from_str(&up) {
        headers.append(header::LINK, link);
    }
    if challenge.status == ChallengeStatus::Processing {
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from(super::RETRY_AFTER_SECONDS),
        );
    }
    Ok(response)
}

pub fn resource(acme: &Acme, challenge: &Challenge) -> ChallengeResource {
    let tkauth = challenge.kind == ChallengeType::TkAuth01.as_str();
    ChallengeResource {
        kind: challenge.kind.clone(),
        url: acme.links.challenge(&challenge.id),
        status: challenge.status,
        token: challenge.token.clone(),
        tkauth_type: tkauth.then(|| "atc".to_owned()),
        token_authorities: tkauth.then(|| acme.provisioner.token_authorizers.clone()),
        validated: challenge.validated_at.map(super::rfc3339),
        error: challenge.error.clone(),
    }
}
