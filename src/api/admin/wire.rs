//! The admin API's JSON shapes, query parsing and cursors.

use std::collections::HashMap;

use axum::body::Bytes;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::problem::AdminProblem;
use crate::storage::{Account, CertificateCursor, CertificateRecord, EabKey};

/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 100;
/// The largest page: bounds one query's work and one response's size.
pub const MAX_LIMIT: u32 = 1000;

/// RFC 5280 §5.3.1 CRLReason names, by code (7 is unassigned).
const REASONS: [(u8, &str); 10] = [
    (0, "unspecified"),
    (1, "keyCompromise"),
    (2, "cACompromise"),
    (3, "affiliationChanged"),
    (4, "superseded"),
    (5, "cessationOfOperation"),
    (6, "certificateHold"),
    (8, "removeFromCRL"),
    (9, "privilegeWithdrawn"),
    (10, "aACompromise"),
];

pub fn reason_name(code: u8) -> String {
    REASONS
        .iter()
        .find(|(c, _)| *c == code)
        .map_or_else(|| code.to_string(), |(_, name)| (*name).to_owned())
}

/// A reason as a name (`keyCompromise`, case-insensitive) or an RFC 5280 code.
pub fn parse_reason(value: &Value) -> Result<u8, AdminProblem> {
    let bad = || {
        AdminProblem::malformed(format!(
            "reason {value} is not an RFC 5280 CRLReason; use one of {} or its number",
            REASONS.map(|(_, n)| n).join(", ")
        ))
    };
    match value {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .ok_or_else(bad),
        Value::String(s) => REASONS
            .iter()
            .find(|(_, name)| name.eq_ignore_ascii_case(s))
            .map(|(code, _)| *code)
            .or_else(|| s.parse().ok())
            .ok_or_else(bad),
        _ => Err(bad()),
    }
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

pub fn parse_time(key: &str, text: &str) -> Result<OffsetDateTime, AdminProblem> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        AdminProblem::malformed(format!(
            "{key} {text:?} is not an RFC 3339 time (e.g. 2030-01-31T12:00:00Z)"
        ))
    })
}

/// A certificate as the admin API shows it; `with_pem` adds the chain.
pub fn certificate(record: &CertificateRecord, now: OffsetDateTime, with_pem: bool) -> Value {
    let c = &record.certificate;
    let mut value = json!({
        "serial": c.serial,
        "id": c.id,
        "account": c.account_id,
        "order": c.order_id,
        "names": record.identifiers.iter().map(|i| i.value()).collect::<Vec<_>>(),
        "not_before": rfc3339(c.not_before),
        "not_after": rfc3339(c.not_after),
        "created_at": rfc3339(c.created_at),
        "status": record.status(now).as_str(),
        "revoked_at": record.revoked_at.map(rfc3339),
        "revocation_reason": record.revocation_reason.map(reason_name),
    });
    if with_pem {
        value["chain_pem"] = Value::String(c.chain_pem.clone());
    }
    value
}

pub fn account(account: &Account) -> Value {
    json!({
        "id": account.id,
        "status": account.status.as_str(),
        "contact": account.contact,
        "provisioner": account.provisioner,
        "key_thumbprint": account.key_thumbprint,
        "created_at": rfc3339(account.created_at),
    })
}

/// An EAB key without its HMAC key.
pub fn eab_key(key: &EabKey) -> Value {
    json!({
        "kid": key.id,
        "label": key.label,
        "reusable": key.reusable,
        "use_count": key.use_count,
        "created_at": rfc3339(key.created_at),
        "revoked_at": key.revoked_at.map(rfc3339),
        "provisioner": key.provisioner,
    })
}

/// A page: `items`, and `next` (the cursor of the following page) when there may be more.
pub fn page(items: Vec<Value>, next: Option<String>) -> Value {
    json!({ "items": items, "next": next })
}

/// The opaque cursor after `(created_at, id)`.
pub fn encode_cursor(created_at: OffsetDateTime, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{id}", created_at.unix_timestamp()))
}

pub fn decode_cursor(text: &str) -> Result<CertificateCursor, AdminProblem> {
    let bad = || AdminProblem::malformed(format!("cursor {text:?} is not one this API returned"));
    let raw = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (secs, id) = raw.split_once('.').ok_or_else(bad)?;
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let created_at = OffsetDateTime::from_unix_timestamp(secs).map_err(|_| bad())?;
    if id.is_empty() {
        return Err(bad());
    }
    Ok(CertificateCursor {
        created_at,
        id: id.to_owned(),
    })
}

/// A query string, with unknown parameters refused by name.
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Query, AdminProblem> {
        let mut map = HashMap::new();
        for (key, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if !allowed.contains(&key.as_ref()) {
                return Err(AdminProblem::malformed(format!(
                    "unknown query parameter {key:?}; this endpoint takes {}",
                    allowed.join(", ")
                )));
            }
            if map.insert(key.to_string(), value.to_string()).is_some() {
                return Err(AdminProblem::malformed(format!(
                    "query parameter {key:?} is given twice"
                )));
            }
        }
        Ok(Query(map))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `limit` (1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`]) and the decoded `cursor`.
    pub fn paging(&self) -> Result<(u32, Option<CertificateCursor>), AdminProblem> {
        let limit = self.limit()?;
        let cursor = self.get("cursor").map(decode_cursor).transpose()?;
        Ok((limit, cursor))
    }

    /// `limit`: 1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`].
    pub fn limit(&self) -> Result<u32, AdminProblem> {
        Ok(match self.get("limit") {
            None => DEFAULT_LIMIT,
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(AdminProblem::malformed(format!(
                        "limit {text:?} must be a whole number from 1 to {MAX_LIMIT}"
                    )));
                }
            },
        })
    }
}

/// A JSON request body of type `T`; an empty body is `{}`.
pub fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, AdminProblem> {
    let bytes: &[u8] = if bytes.is_empty() { b"{}" } else { bytes };
    serde_json::from_slice(bytes)
        .map_err(|e| AdminProblem::malformed(format!("the request body is not valid: {e}")))
}
