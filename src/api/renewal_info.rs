//! renewalInfo (RFC 9773 §4): the suggested renewal window of a certificate, named by its ARI
//! id in the path. A plain GET, as the RFC defines it; POST-as-GET is accepted too.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::acme::resources::{RenewalInfoResource, SuggestedWindowResource};
use crate::app::AppState;

use super::context::ResourceId;

use super::error::ApiError;
use super::extract::PostAsGet;

pub async fn renewal_info(
    State(state): State<AppState>,
    ResourceId(id): ResourceId,
) -> Result<Response, ApiError> {
    respond(&state, &id).await
}

/// The same resource for clients that send every request signed. Any account may ask: the
/// window of a certificate is not a secret (RFC 9773 §4 needs no authentication at all).
pub async fn renewal_info_post(
    State(state): State<AppState>,
    ResourceId(id): ResourceId,
    _request: PostAsGet,
) -> Result<Response, ApiError> {
    respond(&state, &id).await
}

async fn respond(state: &AppState, id: &str) -> Result<Response, ApiError> {
    let info = state.0.authority.renewal_info(id).await?;
    let body = RenewalInfoResource {
        suggested_window: SuggestedWindowResource {
            start: super::rfc3339(info.window.start),
            end: super::rfc3339(info.window.end),
        },
        explanation_url: None,
    };
    let mut response = super::json_response(StatusCode::OK, None, &body);
    // RFC 9773 §4.2: the server SHOULD include Retry-After; in seconds (RFC 9110 §10.2.3).
    let seconds = u64::try_from(info.retry_after.whole_seconds()).unwrap_or(1);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    Ok(response)
}
