//! `POST /v1/sign`: a CSR signed for a one-time token (step-ca's `/1.0/sign`, Anchor's
//! `/v1/sign`).

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use crate::app::AppState;
use crate::authority::direct::{Credentials, SignRequest};

use super::{Caller, JsonBody, V1Error};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SignBody {
    /// PEM, or base64 DER.
    pub csr: String,
    /// The one-time token (a JWK provisioner's JWT, an OIDC ID token).
    pub ott: Option<String>,
    /// Instead of a token: a static provisioner's name, user and secret (development only).
    pub provisioner: Option<String>,
    pub user: Option<String>,
    pub secret: Option<String>,
    pub profile: Option<String>,
    /// RFC 3339.
    pub not_after: Option<String>,
}

/// `201` with the certificate, its chain and its validity.
pub async fn sign(
    State(state): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<SignBody>,
) -> Result<Response, V1Error> {
    let credentials = match (body.ott, body.provisioner, body.user, body.secret) {
        (Some(ott), None, None, None) => Credentials::Token(ott),
        (None, Some(provisioner), Some(user), Some(secret)) => Credentials::Static {
            provisioner,
            user,
            secret,
        },
        _ => {
            return Err(super::malformed(
                "send either ott, or provisioner, user and secret (a static provisioner)",
            ));
        }
    };
    let request = SignRequest {
        csr_der: super::decode_csr(&body.csr)?,
        profile: body.profile,
        not_after: super::rfc3339_field("notAfter", body.not_after.as_deref())?,
    };
    let app = &state.0;
    let issued = app
        .authority
        .direct_sign(&credentials, &app.links.v1_sign(), request, caller)
        .await?;
    Ok(super::issued(&issued))
}
