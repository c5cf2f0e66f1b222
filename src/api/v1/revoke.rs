//! `POST /v1/revoke`: a certificate revoked by serial for a token whose `sub` is that serial
//! (step-ca's `/1.0/revoke`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;

use super::{JsonBody, V1Error};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    /// Hexadecimal, with or without colons.
    pub serial: String,
    /// A token for the `/v1/revoke` URL.
    pub ott: String,
    /// An RFC 5280 §5.3.1 CRLReason; absent: unspecified.
    pub reason: Option<i64>,
}

/// `200` with `{"serial", "status": "revoked"}` once the revocation is recorded and the CRL
/// re-signed.
pub async fn revoke(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<RevokeBody>,
) -> Result<Response, V1Error> {
    let app = &state.0;
    let serial = app
        .authority
        .direct_revoke(&body.ott, &app.links.v1_revoke(), &body.serial, body.reason)
        .await?;
    Ok(crate::api::json_response(
        StatusCode::OK,
        None,
        &json!({"serial": serial, "status": "revoked"}),
    ))
}
