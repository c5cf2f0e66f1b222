//! The direct API (issue 6), beside ACME, in the style of Anchor and step-ca: `POST /v1/sign`
//! (a CSR and a one-time token), `POST /v1/renew` (mutual TLS with the certificate to renew)
//! and `POST /v1/revoke` (a serial and a token). The use cases are
//! [`crate::authority::direct`]; this module turns JSON into their arguments and their errors
//! into `{"type", "detail"}` documents (`application/problem+json`).
//!
//! Requests must be `Content-Type: application/json`: a browser cannot send that cross-origin
//! without a CORS preflight, which this API never answers, so a page cannot make a visitor's
//! browser renew with its client certificate.

pub mod renew;
pub mod revoke;
pub mod sign;

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::authority::direct::{DirectCertificate, DirectError};
use crate::policy::validators::Requester;

/// The `/v1` routes; merged into the main router outside the ACME headers (no nonces, no
/// directory link).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/sign", post_only(sign::sign))
        .route("/v1/renew", post_only(renew::renew))
        .route("/v1/revoke", post_only(revoke::revoke))
}

fn post_only<H, T>(handler: H) -> MethodRouter<AppState>
where
    H: axum::handler::Handler<T, AppState>,
    T: 'static,
{
    post(handler).fallback(|method: Method| async move {
        let mut response = V1Error(DirectError::refused(
            405,
            "malformed",
            format!("method {method} is not allowed here; use POST"),
        ))
        .into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        response
    })
}

/// A direct API error on its way to the client.
#[derive(Debug)]
pub struct V1Error(pub DirectError);

impl From<DirectError> for V1Error {
    fn from(e: DirectError) -> Self {
        V1Error(e)
    }
}

impl IntoResponse for V1Error {
    fn into_response(self) -> Response {
        let (status, kind, detail) = match self.0 {
            DirectError::Refused {
                status,
                kind,
                detail,
            } => (status, kind, detail),
            DirectError::Internal(e) => {
                // As for ACME: a generic body, the cause in the log under an id.
                let id = crate::authority::random_id();
                tracing::error!(request_error_id = %id, error = %e, "internal error");
                (
                    500,
                    "serverInternal",
                    format!("the server could not complete the request (error id {id})"),
                )
            }
        };
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::json!({"type": kind, "detail": detail}).to_string();
        let mut response = (status, body).into_response();
        response
            .extensions_mut()
            .insert(crate::api::request_id::Refusal {
                kind: kind.to_string(),
                status: status.as_u16(),
                detail,
            });
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

fn malformed(detail: impl Into<String>) -> V1Error {
    V1Error(DirectError::refused(400, "malformed", detail))
}

/// A JSON body of type `T`; an empty body reads as `{}`. A wrong content type is a 415, a body
/// that is not `T` a 400, both `malformed`.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = V1Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(V1Error(DirectError::refused(
                415,
                "malformed",
                "the body must be Content-Type: application/json",
            )));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            V1Error(DirectError::refused(
                e.status().as_u16(),
                "malformed",
                e.body_text(),
            ))
        })?;
        let text: &[u8] = if bytes.trim_ascii().is_empty() {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(text)
            .map(JsonBody)
            .map_err(|e| malformed(format!("the body is not the expected JSON: {e}")))
    }
}

/// The network facts of a request, for the validator chain's `source_cidrs`: the TCP peer (from
/// `ConnectInfo`, which the server installs) and every `X-Forwarded-For` line, in order.
pub struct Caller(pub Requester);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let peer_address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_canonical());
        let forwarded_for = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.to_str().unwrap_or("invalid").to_owned())
            .collect();
        Ok(Caller(Requester {
            peer_address,
            forwarded_for,
            ..Requester::default()
        }))
    }
}

/// A CSR as PEM (`CERTIFICATE REQUEST`, or the older `NEW CERTIFICATE REQUEST`) or as base64
/// (base64url or standard, padded or not) DER.
pub fn decode_csr(text: &str) -> Result<Vec<u8>, V1Error> {
    let bad = |detail: &str| V1Error(DirectError::refused(400, "badCSR", detail));
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        let (_, pem) = x509_parser::pem::parse_x509_pem(text.as_bytes())
            .map_err(|_| bad("csr is not valid PEM"))?;
        if !matches!(
            pem.label.as_str(),
            "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST"
        ) {
            return Err(bad("csr is a PEM block that is not a CERTIFICATE REQUEST"));
        }
        return Ok(pem.contents);
    }
    let unpadded = text.trim_end_matches('=');
    URL_SAFE_NO_PAD
        .decode(unpadded)
        .or_else(|_| STANDARD.decode(text))
        .map_err(|_| bad("csr is neither PEM nor base64 DER"))
}

/// An RFC 3339 time field.
pub fn rfc3339_field(
    field: &str,
    value: Option<&str>,
) -> Result<Option<time::OffsetDateTime>, V1Error> {
    value
        .map(|text| {
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map_err(|_| malformed(format!("{field} {text:?} is not an RFC 3339 date-time")))
        })
        .transpose()
}

/// The body of `/v1/sign` and `/v1/renew`: the leaf, the intermediates, both together.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct IssuedBody {
    certificate: String,
    chain: Vec<String>,
    fullchain: String,
    serial: String,
    not_before: String,
    not_after: String,
}

/// `201 Created` with the certificate.
fn issued(certificate: &DirectCertificate) -> Response {
    let mut blocks = certificate.certificates().into_iter();
    let body = IssuedBody {
        certificate: blocks.next().unwrap_or_default(),
        chain: blocks.collect(),
        fullchain: certificate.chain_pem.clone(),
        serial: certificate.serial.clone(),
        not_before: super::rfc3339(certificate.not_before),
        not_after: super::rfc3339(certificate.not_after),
    };
    super::json_response(StatusCode::CREATED, None, &body)
}
