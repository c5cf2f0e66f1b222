//! The challenge resource (RFC 8555 §7.5.1): POST `{}` to start validation, POST-as-GET to
//! read it.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::acme::ChallengeStatus;
use crate::acme::resources::ChallengeResource;
use crate::app::AppState;
use crate::storage::Challenge;

use super::error::ApiError;
use super::extract::{AccountPost, Payload};
use super::links::Links;

pub async fn challenge(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: AccountPost<Payload>,
) -> Result<Response, ApiError> {
    let app = &state.0;
    let challenge = match request.payload {
        Payload::Empty => app.authority.challenge(&request.account, &id).await?,
        // RFC 8555 §7.5.1: the client sends an empty object; any other fields are ignored.
        Payload::Json(_) => {
            app.authority
                .respond_to_challenge(&request.account, &id)
                .await?
        }
    };
    let mut response =
        super::json_response(StatusCode::OK, None, &resource(&app.links, &challenge));
    let headers = response.headers_mut();
    let up = format!(
        "<{}>;rel=\"up\"",
        app.links.authorization(&challenge.authorization_id)
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

pub fn resource(links: &Links, challenge: &Challenge) -> ChallengeResource {
    ChallengeResource {
        kind: challenge.kind.clone(),
        url: links.challenge(&challenge.id),
        status: challenge.status,
        token: challenge.token.clone(),
        validated: challenge.validated_at.map(super::rfc3339),
        error: challenge.error.clone(),
    }
}
