//! Certificate download (RFC 8555 §7.4.2).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;

use super::context::ResourceId;

use super::error::ApiError;
use super::extract::PostAsGet;

pub async fn certificate(
    State(state): State<AppState>,
    ResourceId(id): ResourceId,
    request: PostAsGet,
) -> Result<Response, ApiError> {
    let app = &state.0;
    let certificate = app.authority.certificate(&request.account, &id).await?;
    let mut response = (StatusCode::OK, certificate.chain_pem).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pem-certificate-chain"),
    );
    Ok(response)
}
