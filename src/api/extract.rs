//! Protocol checks live here, not in handlers (ARCHITECTURE decision 6). A handler receives
//! verified data: the content type was right, the JWS parsed and verified, `url` matched the
//! request, and the nonce was redeemed exactly once.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use crate::acme::{Problem, ProblemType};
use crate::app::AppState;
use crate::authority::revocation::Signer;
use crate::jose::{ALGORITHMS, JoseError, Jwk, KeyOrKeyId, ParsedJws};
use crate::storage::Account;

use super::error::ApiError;

/// Bodies larger than this are refused before parsing: a CSR for 100 names is a few KiB.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// A request signed with a `jwk` (newAccount).
pub struct JwkPost<T> {
    pub key: Jwk,
    pub payload: T,
}

/// A request signed by an existing, valid account (`kid`), with a JSON payload.
pub struct AccountPost<T> {
    pub account: Account,
    pub payload: T,
}

/// A POST-as-GET (RFC 8555 §6.3): signed by an account, empty payload.
pub struct PostAsGet {
    pub account: Account,
}

/// Either a POST-as-GET or a JSON payload, for resources that accept both (challenges,
/// authorizations, accounts).
pub enum Payload {
    Empty,
    Json(serde_json::Value),
}

/// The checks shared by every signed request.
struct Verified {
    key: Jwk,
    account: Option<Account>,
    payload: Vec<u8>,
}

async fn verify(req: Request, state: &AppState) -> Result<Verified, ApiError> {
    let app = &state.0;
    // RFC 8555 §6.2: other content types get 415.
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // RFC 9110 §8.3.1: the type and subtype are case-insensitive.
    let media_type = content_type.split(';').next().map(str::trim);
    if !media_type.is_some_and(|t| t.eq_ignore_ascii_case("application/jose+json")) {
        return Err(Problem::malformed(format!(
            "Content-Type must be application/jose+json, not {content_type:?}"
        ))
        .with_status(415)
        .into());
    }
    let request_url = format!(
        "{}{}",
        app.links.base(),
        req.uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let body: Bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            Problem::malformed(format!("the body is larger than {MAX_BODY_BYTES} bytes"))
        })?;
    let jws = ParsedJws::parse(&body).map_err(jose_problem)?;
    // RFC 8555 §6.4: the signed url must be the URL the request was sent to.
    if jws.header.url != request_url {
        return Err(Problem::unauthorized(format!(
            "the JWS url {:?} is not the request URL {request_url:?}",
            jws.header.url
        ))
        .into());
    }
    let (key, account) = match &jws.header.key {
        KeyOrKeyId::Jwk(jwk) => (jwk.clone(), None),
        KeyOrKeyId::KeyId(kid) => {
            let id = app.links.account_id_from_kid(kid).ok_or_else(|| {
                Problem::new(
                    ProblemType::AccountDoesNotExist,
                    format!("kid {kid:?} is not an account URL of this server"),
                )
            })?;
            let account = app.authority.account_for_request(id).await?;
            let key: Jwk = serde_json::from_value(account.jwk.clone()).map_err(|e| {
                crate::authority::Error::Store(crate::storage::StoreError::Other(Box::new(e)))
            })?;
            (key, Some(account))
        }
    };
    jws.verify(&key).map_err(jose_problem)?;
    // The nonce is redeemed last, so a request that fails the checks above does not use
    // it up (RFC 8555 §6.5).
    let nonce = jws
        .header
        .nonce
        .as_deref()
        .ok_or_else(|| Problem::bad_nonce("the JWS has no nonce"))?;
    let now = app.authority.now();
    let expires = app.nonces.check(nonce, now).map_err(Problem::bad_nonce)?;
    let reject_percent = app.config.testing.nonce_reject_percent;
    // Two random bytes keep the modulo bias below 0.1 %.
    if reject_percent > 0
        && u16::from_be_bytes(crate::authority::random_bytes::<2>()) % 100
            < u16::from(reject_percent)
    {
        return Err(Problem::bad_nonce(
            "the nonce was rejected on purpose (testing.nonce_reject_percent); retry with a fresh one",
        )
        .into());
    }
    if !app.authority.redeem_nonce(nonce, expires).await? {
        return Err(Problem::bad_nonce("the nonce was already used").into());
    }
    Ok(Verified {
        key,
        account,
        payload: jws.payload,
    })
}

fn jose_problem(e: JoseError) -> ApiError {
    let kind = match e {
        JoseError::Malformed(_) | JoseError::BadSignature => ProblemType::Malformed,
        JoseError::BadAlgorithm(_) => ProblemType::BadSignatureAlgorithm,
        JoseError::BadKey(_) => ProblemType::BadPublicKey,
    };
    let mut problem = Problem::new(kind, e.to_string());
    if kind == ProblemType::BadSignatureAlgorithm {
        // RFC 8555 §6.2: the problem lists the algorithms the server accepts.
        problem.algorithms = ALGORITHMS.iter().map(|a| a.to_string()).collect();
    }
    problem.into()
}

fn json<T: DeserializeOwned>(payload: &[u8]) -> Result<T, ApiError> {
    if payload.is_empty() {
        return Err(
            Problem::malformed("this request needs a JSON payload, not POST-as-GET").into(),
        );
    }
    let value = json_object(payload)?;
    serde_json::from_value(value)
        .map_err(|e| Problem::malformed(format!("the payload is not valid: {e}")).into())
}

/// RFC 8555 §7: every ACME payload is a JSON object. Checked before typed parsing, because
/// serde would also read a struct from a JSON array.
fn json_object(payload: &[u8]) -> Result<serde_json::Value, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|e| Problem::malformed(format!("the payload is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(Problem::malformed("the payload must be a JSON object").into());
    }
    Ok(value)
}

fn require_account(verified: &mut Verified) -> Result<Account, ApiError> {
    verified.account.take().ok_or_else(|| {
        Problem::malformed("this request must be signed with the account's kid, not a jwk").into()
    })
}

impl<T: DeserializeOwned> FromRequest<AppState> for JwkPost<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let verified = verify(req, state).await?;
        if verified.account.is_some() {
            return Err(
                Problem::malformed("newAccount must be signed with a jwk, not a kid").into(),
            );
        }
        Ok(JwkPost {
            payload: json(&verified.payload)?,
            key: verified.key,
        })
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for AccountPost<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let mut verified = verify(req, state).await?;
        let account = require_account(&mut verified)?;
        Ok(AccountPost {
            payload: json(&verified.payload)?,
            account,
        })
    }
}

impl FromRequest<AppState> for PostAsGet {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let mut verified = verify(req, state).await?;
        let account = require_account(&mut verified)?;
        if !verified.payload.is_empty() {
            return Err(Problem::malformed(
                "this resource takes POST-as-GET: the payload must be empty",
            )
            .into());
        }
        Ok(PostAsGet { account })
    }
}

impl FromRequest<AppState> for AccountPost<Payload> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let mut verified = verify(req, state).await?;
        let account = require_account(&mut verified)?;
        let payload = if verified.payload.is_empty() {
            Payload::Empty
        } else {
            Payload::Json(json_object(&verified.payload)?)
        };
        Ok(AccountPost { account, payload })
    }
}

/// A revokeCert request (RFC 8555 §7.6): signed either by an account (`kid`) or by the
/// certificate's own key (`jwk`); the authority decides whether that signer may revoke.
pub struct RevokePost<T> {
    pub signer: Signer,
    pub payload: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for RevokePost<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let verified = verify(req, state).await?;
        let payload = json(&verified.payload)?;
        let signer = match verified.account {
            Some(account) => Signer::Account(account),
            None => Signer::Key(verified.key),
        };
        Ok(RevokePost { signer, payload })
    }
}
