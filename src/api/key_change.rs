//! keyChange (RFC 8555 §7.3.5): the outer JWS is signed by the account (the extractor checks
//! it); its payload is an inner JWS, signed by the new key, naming the account and its old
//! key.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::acme::resources::KeyChangeRequest;
use crate::acme::{Problem, ProblemType};
use crate::app::AppState;

use super::context::Acme;
use crate::authority::account::KeyChangeOutcome;
use crate::jose::{JoseError, Jwk, KeyOrKeyId, ParsedJws};

use super::error::ApiError;
use super::extract::AccountPost;

pub async fn key_change(
    State(state): State<AppState>,
    acme: Acme,
    request: AccountPost<serde_json::Value>,
) -> Result<Response, ApiError> {
    let app = &state.0;
    let (new_key, change) = inner_jws(&request.payload, &acme.links.key_change())?;
    // §7.3.5 step 7: `account` is the account that signed the outer JWS (its `kid`).
    let account_url = acme.links.account(&request.account.id);
    if change.account != account_url {
        return Err(Problem::malformed(format!(
            "keyChange: account {:?} is not the account that signed the request ({account_url:?})",
            change.account
        ))
        .into());
    }
    let old_key = Jwk::parse(&change.old_key)
        .map_err(|e| Problem::malformed(format!("keyChange: oldKey is not a valid JWK: {e}")))?;
    match app
        .authority
        .change_key(&request.account, &old_key, &new_key)
        .await?
    {
        KeyChangeOutcome::Changed(account) => Ok(super::json_response(
            StatusCode::OK,
            Some(account_url),
            &super::account::resource(&acme.links, &account),
        )),
        KeyChangeOutcome::KeyInUse(holder) => {
            let mut problem = Problem::malformed(
                "keyChange: the new key already belongs to an account (see Location)",
            )
            .with_status(409);
            problem.location = Some(acme.links.account(&holder));
            Err(problem.into())
        }
    }
}

/// §7.3.5 steps 2 to 6: the inner JWS is a flattened JWS with a `jwk` and no `nonce`, its
/// `url` is the outer one, it verifies with its own `jwk`, and its payload is a keyChange
/// object. Returns the new key and the payload.
fn inner_jws(
    payload: &serde_json::Value,
    outer_url: &str,
) -> Result<(Jwk, KeyChangeRequest), ApiError> {
    let bytes = serde_json::to_vec(payload)
        .map_err(|e| Problem::malformed(format!("keyChange: the payload is not valid: {e}")))?;
    let inner = ParsedJws::parse(&bytes).map_err(inner_problem)?;
    let KeyOrKeyId::Jwk(new_key) = &inner.header.key else {
        return Err(Problem::malformed(
            "keyChange: the inner JWS must carry the new key as \"jwk\", not a \"kid\"",
        )
        .into());
    };
    if inner.header.nonce.is_some() {
        return Err(Problem::malformed(
            "keyChange: the inner JWS must not have a \"nonce\" (RFC 8555 §7.3.5)",
        )
        .into());
    }
    if inner.header.url != outer_url {
        return Err(Problem::malformed(format!(
            "keyChange: the inner JWS url {:?} is not the outer url {outer_url:?}",
            inner.header.url
        ))
        .into());
    }
    inner.verify(new_key).map_err(inner_problem)?;
    let change: KeyChangeRequest = serde_json::from_slice(&inner.payload).map_err(|e| {
        Problem::malformed(format!(
            "keyChange: the inner payload is not a keyChange object: {e}"
        ))
    })?;
    Ok((new_key.clone(), change))
}

fn inner_problem(e: JoseError) -> ApiError {
    let kind = match e {
        JoseError::Malformed(_) | JoseError::BadSignature => ProblemType::Malformed,
        JoseError::BadAlgorithm(_) => ProblemType::BadSignatureAlgorithm,
        JoseError::BadKey(_) => ProblemType::BadPublicKey,
    };
    Problem::new(kind, format!("keyChange: inner JWS: {e}")).into()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::jose::{KeyRef, SigningKey, sign_jws, sign_jws_raw};

    const URL: &str = "https://ca.example/acme/key-change";
    const ACCOUNT: &str = "https://ca.example/acme/account/1";

    #[test]
    fn inner_jws_checks() {
        let new = SigningKey::generate_p256();
        let old = SigningKey::generate_p256();
        let payload = json!({"account": ACCOUNT, "oldKey": old.jwk()});
        let header = |extra: Value| {
            let mut h = json!({"alg": "ES256", "jwk": new.jwk(), "url": URL});
            if let (Some(h), Value::Object(extra)) = (h.as_object_mut(), extra) {
                h.extend(extra);
            }
            h
        };
        let body = payload.to_string();
        let cases: Vec<(&str, Value, Option<&str>)> = vec![
            (
                "valid",
                sign_jws(&new, KeyRef::Jwk, None, URL, Some(&payload)),
                None,
            ),
            ("not a JWS", json!("jws"), Some("not a JSON object")),
            (
                "kid instead of jwk",
                sign_jws(&new, KeyRef::Kid(ACCOUNT), None, URL, Some(&payload)),
                Some("must carry the new key as \"jwk\""),
            ),
            (
                "nonce",
                sign_jws(&new, KeyRef::Jwk, Some("n"), URL, Some(&payload)),
                Some("must not have a \"nonce\""),
            ),
            (
                "other url",
                sign_jws(
                    &new,
                    KeyRef::Jwk,
                    None,
                    "https://ca.example/acme/new-order",
                    Some(&payload),
                ),
                Some("is not the outer url"),
            ),
            (
                "signed by another key",
                sign_jws_raw(&old, header(json!({})), body.as_bytes()),
                Some("does not verify"),
            ),
            (
                "unsupported algorithm",
                sign_jws_raw(&new, header(json!({"alg": "HS256"})), body.as_bytes()),
                Some("HS256"),
            ),
            (
                "payload without oldKey",
                sign_jws(
                    &new,
                    KeyRef::Jwk,
                    None,
                    URL,
                    Some(&json!({"account": ACCOUNT})),
                ),
                Some("not a keyChange object"),
            ),
        ];
        for (name, jws, expected) in cases {
            match (inner_jws(&jws, URL), expected) {
                (Ok((key, change)), None) => {
                    assert_eq!(key, new.jwk(), "{name}");
                    assert_eq!(change.account, ACCOUNT, "{name}");
                }
                (Err(e), Some(fragment)) => {
                    assert!(e.0.detail.contains(fragment), "{name}: {}", e.0.detail)
                }
                (Ok(_), Some(_)) => panic!("{name}: accepted"),
                (Err(e), None) => panic!("{name}: refused: {}", e.0.detail),
            }
        }
    }
}
