//! revokeCert (RFC 8555 §7.6).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::acme::resources::RevocationRequest;
use crate::app::AppState;

use super::error::ApiError;
use super::extract::RevokePost;

/// 200 with an empty body once the revocation is recorded (and the CRL re-signed).
pub async fn revoke_cert(
    State(state): State<AppState>,
    request: RevokePost<RevocationRequest>,
) -> Result<Response, ApiError> {
    let RevokePost { signer, payload } = request;
    state
        .0
        .authority
        .revoke(&signer, &payload.certificate, payload.reason)
        .await?;
    Ok(StatusCode::OK.into_response())
}
