//! Protocol checks live here, not in handlers (ARCHITECTURE decision 6). A handler receives
//! verified data: the content type was right, the JWS parsed and verified, `url` matched the
//! request, and the nonce was redeemed exactly once.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use crate::acme::{Problem, ProblemType};
use crate::app::AppState;
use crate::authority::revocation::Signer;
use crate::jose::{ALGORITHMS, JoseError, Jwk, KeyOrKeyId, ParsedJws};
use crate::policy::validators::{Requester, client_address};
use crate::storage::Account;

use super::context::Acme;
use super::error::ApiError;

/// Bodies larger than this are refused before parsing: a CSR for 100 names is a few KiB.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The de-facto standard header in which proxies name the client (no RFC; RFC 7239's
/// `Forwarded` is rarely sent).
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// A request signed with a `jwk` (newAccount).
pub struct JwkPost<T> {
    pub key: Jwk,
    pub payload: T,
    /// The client's address for rate limits: the TCP peer, or the `X-Forwarded-For` entry
    /// that `rate_limits.trusted_proxies` vouch for; `None` without a known peer.
    pub client: Option<IpAddr>,
}

/// A request signed by an existing, valid account (`kid`), with a JSON payload.
pub struct AccountPost<T> {
    pub account: Account,
    pub payload: T,
    /// Who asks, for the validator chain: the account, its EAB key label, the TCP peer and
    /// the `X-Forwarded-For` values (see [`requester`]).
    pub requester: Requester,
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
    /// Where the request came from, read before the body was consumed.
    origin: Origin,
}

/// The network facts of a request, as the listener and the proxies in front of it saw them.
struct Origin {
    peer: Option<IpAddr>,
    forwarded_for: Vec<String>,
}

impl Origin {
    /// The TCP peer comes from axum's `ConnectInfo<SocketAddr>`, which the server installs
    /// (`into_make_service_with_connect_info`). A request without it (an in-process test
    /// that does not insert `ConnectInfo(addr)` as a request extension) has no known peer:
    /// `source_cidrs` then refuses it, and every other rule is unaffected. Every
    /// `X-Forwarded-For` line is kept, in order; `client_address` decides whether to trust
    /// them. A value that is not visible ASCII is kept as an unparseable entry, which stops
    /// the walk there.
    fn of(req: &Request) -> Origin {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_canonical());
        let forwarded_for = req
            .headers()
            .get_all(X_FORWARDED_FOR)
            .iter()
            .map(|v| v.to_str().unwrap_or("invalid").to_owned())
            .collect();
        Origin {
            peer,
            forwarded_for,
        }
    }
}

/// The requester of an account-signed request. The EAB key label is read only when a chain
/// is configured: without rules nobody asks, and it costs a query.
async fn requester(
    state: &AppState,
    account: &Account,
    origin: Origin,
) -> Result<Requester, ApiError> {
    let app = &state.0;
    let policy = app.provisioners.policy(&account.provisioner);
    let eab_key_label = if policy.chain.is_empty() {
        None
    } else {
        app.authority
            .account_eab_key(&account.id)
            .await?
            .map(|key| key.label)
    };
    Ok(Requester {
        provisioner: Some(account.provisioner.clone()),
        account_id: Some(account.id.clone()),
        eab_key_label,
        groups: Vec::new(),
        peer_address: origin.peer,
        forwarded_for: origin.forwarded_for,
    })
}

async fn verify(req: Request, state: &AppState) -> Result<Verified, ApiError> {
    let app = &state.0;
    let origin = Origin::of(&req);
    let acme = req
        .extensions()
        .get::<Acme>()
        .cloned()
        .unwrap_or_else(|| app.default_acme());
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
    // Nested routers see their own part of the path; the JWS names the whole URL.
    let uri = req
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| req.uri().clone(), |original| original.0.clone());
    let request_url = format!(
        "{}{}",
        app.links.base(),
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
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
    let (key, signer) = match &jws.header.key {
        KeyOrKeyId::Jwk(jwk) => (jwk.clone(), RequestSigner::NewKey),
        KeyOrKeyId::KeyId(kid) => {
            let id = acme.links.account_id_from_kid(kid).ok_or_else(|| {
                Problem::new(
                    ProblemType::AccountDoesNotExist,
                    format!(
                        "kid {kid:?} is not an account URL of this directory ({})",
                        acme.links.directory()
                    ),
                )
            })?;
            crate::authority::audit::update(|context| {
                context.claimed_account = Some(id.to_owned());
            });
            // A cached key is only a guess: the redemption below reads the account anyway.
            match app.account_keys.as_ref().and_then(|keys| keys.get(id)) {
                Some(key) if jws.verify(&key).is_ok() => (
                    key,
                    RequestSigner::Cached {
                        id: id.to_owned(),
                        kid: kid.clone(),
                    },
                ),
                _ => {
                    let account = app.authority.account_for_request(id).await?;
                    check_directory(&account, &acme, kid)?;
                    let key = stored_key(&account)?;
                    verify_signature(&jws, &key)?;
                    if let Some(keys) = &app.account_keys {
                        keys.remember(id, &key);
                    }
                    (key, RequestSigner::Read(account))
                }
            }
        }
    };
    if matches!(signer, RequestSigner::NewKey) {
        verify_signature(&jws, &key)?;
    }
    if let RequestSigner::Read(account) = &signer {
        crate::authority::audit::update(|context| context.account = Some(account.id.clone()));
    }
    // The nonce is redeemed last, so a request that fails the checks above does not use
    // it up (RFC 8555 §6.5). With a cached key, the account's state is checked in the same
    // statement as the redemption, so a deactivated account's request uses up its nonce.
    let nonce = jws.header.nonce.as_deref().ok_or_else(|| {
        metrics::counter!("mayfly_nonces_rejected_total", "reason" => "missing").increment(1);
        Problem::bad_nonce("the JWS has no nonce")
    })?;
    let now = app.authority.now();
    let expires = app.nonces.check(nonce, now).map_err(|why| {
        metrics::counter!("mayfly_nonces_rejected_total", "reason" => "invalid").increment(1);
        Problem::bad_nonce(why)
    })?;
    let reject_percent = app.config.testing.nonce_reject_percent;
    if app
        .nonces
        .reject_for_testing(nonce, &key.thumbprint(), reject_percent)
    {
        metrics::counter!("mayfly_nonces_rejected_total", "reason" => "testing").increment(1);
        return Err(Problem::bad_nonce(
            "the nonce was rejected on purpose (testing.nonce_reject_percent); retry with a fresh one",
        )
        .into());
    }
    let (fresh, account) = match signer {
        RequestSigner::NewKey => (redeem(app, nonce, expires).await?, None),
        RequestSigner::Read(account) => (redeem(app, nonce, expires).await?, Some(account)),
        RequestSigner::Cached { id, kid } => {
            let (fresh, account) = app
                .authority
                .redeem_nonce_for_account(nonce, expires, &id)
                .await?;
            check_directory(&account, &acme, &kid)?;
            // The key changed after it was cached (a key rollover): the stored one decides.
            let stored = stored_key(&account)?;
            if stored != key {
                if let Some(keys) = &app.account_keys {
                    keys.forget(&id);
                }
                verify_signature(&jws, &stored)?;
            }
            crate::authority::audit::update(|context| context.account = Some(account.id.clone()));
            (fresh, Some(account))
        }
    };
    if !fresh {
        metrics::counter!("mayfly_nonces_rejected_total", "reason" => "reused").increment(1);
        return Err(Problem::bad_nonce("the nonce was already used").into());
    }
    Ok(Verified {
        key,
        account,
        payload: jws.payload,
        origin,
    })
}

/// Who signed a request, as far as `verify` knows before the nonce is redeemed.
enum RequestSigner {
    /// A `jwk` request (newAccount, revocation with the certificate key).
    NewKey,
    /// A `kid` request whose account was read from the store.
    Read(Account),
    /// A `kid` request verified with a cached key; the account is read with the nonce.
    Cached { id: String, kid: String },
}

async fn redeem(
    app: &crate::app::App,
    nonce: &str,
    expires: time::OffsetDateTime,
) -> Result<bool, ApiError> {
    match app.nonces.redeem_in_memory(nonce) {
        Some(fresh) => Ok(fresh),
        None => Ok(app.authority.redeem_nonce(nonce, expires).await?),
    }
}

/// An account belongs to the directory it was created at: its policy applies.
fn check_directory(
    account: &Account,
    acme: &crate::api::context::Acme,
    kid: &str,
) -> Result<(), ApiError> {
    if account.provisioner != acme.name() {
        return Err(Problem::new(
            ProblemType::AccountDoesNotExist,
            format!(
                "kid {kid:?} is not an account of this directory ({})",
                acme.links.directory()
            ),
        )
        .into());
    }
    Ok(())
}

fn stored_key(account: &Account) -> Result<Jwk, ApiError> {
    serde_json::from_value(account.jwk.clone()).map_err(|e| {
        crate::authority::Error::Store(crate::storage::StoreError::Other(Box::new(e))).into()
    })
}

fn verify_signature(jws: &ParsedJws, key: &Jwk) -> Result<(), ApiError> {
    jws.verify(key).map_err(|e| {
        // An authentication failure for the audit log (issue 7), unlike other bad JWS.
        if matches!(e, JoseError::BadSignature) {
            crate::authority::audit::update(|context| context.bad_signature = true);
        }
        jose_problem(e)
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
        let trusted = &state.0.config.rate_limits.trusted_proxies;
        let origin = &verified.origin;
        let client = origin
            .peer
            .map(|peer| client_address(peer, &origin.forwarded_for, trusted));
        Ok(JwkPost {
            payload: json(&verified.payload)?,
            key: verified.key,
            client,
        })
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for AccountPost<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let mut verified = verify(req, state).await?;
        let account = require_account(&mut verified)?;
        // Before the payload is parsed: `T` need not be `Send` across the await.
        let requester = requester(state, &account, verified.origin).await?;
        let payload = json(&verified.payload)?;
        Ok(AccountPost {
            payload,
            account,
            requester,
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
        let requester = requester(state, &account, verified.origin).await?;
        Ok(AccountPost {
            account,
            payload,
            requester,
        })
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
