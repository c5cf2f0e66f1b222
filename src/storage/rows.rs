//! Row decoding, value encoding and error normalisation shared by the SQLite and PostgreSQL
//! backends. Both store the same column types (TEXT, 64-bit integers, booleans), so one
//! decoder per model serves both, through the `Columns` trait each backend's rows implement.

use std::collections::HashMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::error::DatabaseError;
use time::OffsetDateTime;

use super::{
    Account, Authorization, Certificate, Challenge, EabKey, Order, RenewalState,
    RevokedCertificate, StoreError, StoreResult,
};
use crate::acme::{AccountStatus, ChallengeStatus};

/// An error of ours (bad stored data, bad configuration) as `StoreError::Other`.
pub(crate) fn other(message: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
    StoreError::Other(message.into())
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(conflict_key(&*db))
            }
            // Only inserts reference other rows, so a broken reference means the row it
            // names (an account, an order, an authorization) does not exist.
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
            e => StoreError::Other(Box::new(e)),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Other(Box::new(e))
    }
}

/// Names the violated key as `table.column`. SQLite says "UNIQUE constraint failed:
/// accounts.key_thumbprint"; PostgreSQL gives the constraint name, and the PostgreSQL
/// migrations name every unique constraint in that same `table.column` form.
fn conflict_key(db: &dyn DatabaseError) -> String {
    if let Some(constraint) = db.constraint() {
        return constraint.to_owned();
    }
    let message = db.message();
    message
        .strip_prefix("UNIQUE constraint failed: ")
        .unwrap_or(message)
        .to_owned()
}

/// The key `complete_order` reports as conflicting when the order already has a certificate
/// or an error: an order is completed at most once.
pub(crate) const ORDER_DONE: &str = "orders.certificate_id";

/// Typed column access, so the decoders below work on rows of either backend.
pub(crate) trait Columns {
    fn text(&self, column: &str) -> StoreResult<String>;
    fn opt_text(&self, column: &str) -> StoreResult<Option<String>>;
    fn int(&self, column: &str) -> StoreResult<i64>;
    fn opt_int(&self, column: &str) -> StoreResult<Option<i64>>;
    fn flag(&self, column: &str) -> StoreResult<bool>;
}

// PostgreSQL rows; the SQLite backend implements `Columns` for rusqlite's rows itself.
impl Columns for sqlx::postgres::PgRow {
    fn text(&self, column: &str) -> StoreResult<String> {
        Ok(self.try_get(column)?)
    }
    fn opt_text(&self, column: &str) -> StoreResult<Option<String>> {
        Ok(self.try_get(column)?)
    }
    fn int(&self, column: &str) -> StoreResult<i64> {
        Ok(self.try_get(column)?)
    }
    fn opt_int(&self, column: &str) -> StoreResult<Option<i64>> {
        Ok(self.try_get(column)?)
    }
    fn flag(&self, column: &str) -> StoreResult<bool> {
        Ok(self.try_get(column)?)
    }
}

/// The columns of a row that PostgreSQL returned as a JSON object (`json_build_object`), as
/// nested rows are: NULL is JSON `null`, integers are numbers.
pub(crate) struct JsonColumns<'a>(pub &'a serde_json::Map<String, serde_json::Value>);

impl JsonColumns<'_> {
    fn value(&self, column: &str) -> StoreResult<&serde_json::Value> {
        self.0
            .get(column)
            .ok_or_else(|| other(format!("no column {column:?} in the nested row")))
    }
}

impl Columns for JsonColumns<'_> {
    fn text(&self, column: &str) -> StoreResult<String> {
        self.opt_text(column)?
            .ok_or_else(|| other(format!("column {column:?} is NULL")))
    }
    fn opt_text(&self, column: &str) -> StoreResult<Option<String>> {
        match self.value(column)? {
            serde_json::Value::Null => Ok(None),
            serde_json::Value::String(text) => Ok(Some(text.clone())),
            value => Err(other(format!("column {column:?} is not text: {value}"))),
        }
    }
    fn int(&self, column: &str) -> StoreResult<i64> {
        self.opt_int(column)?
            .ok_or_else(|| other(format!("column {column:?} is NULL")))
    }
    fn opt_int(&self, column: &str) -> StoreResult<Option<i64>> {
        match self.value(column)? {
            serde_json::Value::Null => Ok(None),
            value => value
                .as_i64()
                .map(Some)
                .ok_or_else(|| other(format!("column {column:?} is not an integer: {value}"))),
        }
    }
    fn flag(&self, column: &str) -> StoreResult<bool> {
        self.value(column)?
            .as_bool()
            .ok_or_else(|| other(format!("column {column:?} is not a boolean")))
    }
}

/// Times are stored as whole Unix seconds; sub-second precision is dropped.
pub(crate) fn secs(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

pub(crate) fn opt_secs(t: Option<OffsetDateTime>) -> Option<i64> {
    t.map(secs)
}

fn time(secs: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(other)
}

fn opt_time(secs: Option<i64>) -> StoreResult<Option<OffsetDateTime>> {
    secs.map(time).transpose()
}

pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(other)
}

pub(crate) fn opt_json<T: Serialize>(value: Option<&T>) -> StoreResult<Option<String>> {
    value.map(to_json).transpose()
}

fn from_json<T: DeserializeOwned>(column: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| other(format!("stored {column} is not valid: {e}")))
}

fn from_opt_json<T: DeserializeOwned>(
    column: &str,
    text: Option<String>,
) -> StoreResult<Option<T>> {
    text.map(|t| from_json(column, &t)).transpose()
}

pub(crate) fn account(row: &impl Columns) -> StoreResult<Account> {
    let status = row.text("status")?;
    Ok(Account {
        id: row.text("id")?,
        key_thumbprint: row.text("key_thumbprint")?,
        jwk: from_json("accounts.jwk", &row.text("jwk")?)?,
        contact: from_json("accounts.contact", &row.text("contact")?)?,
        status: AccountStatus::parse(&status)
            .ok_or_else(|| other(format!("unknown account status {status:?}")))?,
        created_at: time(row.int("created_at")?)?,
        provisioner: row.text("provisioner")?,
    })
}

// --- Accounts (issue 3) ---

pub(crate) fn eab_key(row: &impl Columns) -> StoreResult<EabKey> {
    use base64::Engine as _;
    let hmac_key = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(row.text("hmac_key")?)
        .map_err(|e| other(format!("stored eab_keys.hmac_key is not base64url: {e}")))?;
    Ok(EabKey {
        id: row.text("id")?,
        hmac_key,
        label: row.text("label")?,
        reusable: row.flag("reusable")?,
        created_at: time(row.int("created_at")?)?,
        revoked_at: opt_time(row.opt_int("revoked_at")?)?,
        use_count: u64::try_from(row.int("use_count")?).map_err(other)?,
        provisioner: row.opt_text("provisioner")?,
    })
}

/// Groups `(order_id, authorization_id)` rows, in position order, by order.
pub(crate) fn authorization_ids_by_order(
    pairs: Vec<(String, String)>,
) -> HashMap<String, Vec<String>> {
    let mut by_order: HashMap<String, Vec<String>> = HashMap::new();
    for (order_id, authorization_id) in pairs {
        by_order.entry(order_id).or_default().push(authorization_id);
    }
    by_order
}

/// Why a guarded bind changed nothing, from the key's `revoked_at` (`None`: no such key).
pub(crate) fn eab_refusal(revoked_at: Option<Option<i64>>) -> super::EabRefusal {
    match revoked_at {
        None => super::EabRefusal::Unknown,
        Some(Some(_)) => super::EabRefusal::Revoked,
        Some(None) => super::EabRefusal::Used,
    }
}

// --- end of accounts (issue 3) ---

/// An order row; `authorization_ids` come from the join table, in position order.
pub(crate) fn order(row: &impl Columns, authorization_ids: Vec<String>) -> StoreResult<Order> {
    Ok(Order {
        id: row.text("id")?,
        account_id: row.text("account_id")?,
        identifiers: from_json("orders.identifiers", &row.text("identifiers")?)?,
        authorization_ids,
        not_before: opt_time(row.opt_int("not_before")?)?,
        not_after: opt_time(row.opt_int("not_after")?)?,
        expires: time(row.int("expires")?)?,
        created_at: time(row.int("created_at")?)?,
        processing_since: opt_time(row.opt_int("processing_since")?)?,
        certificate_id: row.opt_text("certificate_id")?,
        error: from_opt_json("orders.error", row.opt_text("error")?)?,
        profile: row.opt_text("profile")?,
        replaces: row.opt_text("replaces")?,
    })
}

/// An authorization row, without its challenges (see [`with_challenges`]).
pub(crate) fn authorization(row: &impl Columns) -> StoreResult<Authorization> {
    Ok(Authorization {
        id: row.text("id")?,
        account_id: row.text("account_id")?,
        identifier: from_json("authorizations.identifier", &row.text("identifier")?)?,
        expires: time(row.int("expires")?)?,
        created_at: time(row.int("created_at")?)?,
        deactivated: row.flag("deactivated")?,
        challenges: Vec::new(),
    })
}

pub(crate) fn challenge(row: &impl Columns) -> StoreResult<Challenge> {
    let status = row.text("status")?;
    Ok(Challenge {
        id: row.text("id")?,
        authorization_id: row.text("authorization_id")?,
        kind: row.text("kind")?,
        token: row.text("token")?,
        status: ChallengeStatus::parse(&status)
            .ok_or_else(|| other(format!("unknown challenge status {status:?}")))?,
        validated_at: opt_time(row.opt_int("validated_at")?)?,
        error: from_opt_json("challenges.error", row.opt_text("error")?)?,
        token_identity: from_opt_json(
            "challenges.token_identity",
            row.opt_text("token_identity")?,
        )?,
    })
}

pub(crate) fn certificate(row: &impl Columns) -> StoreResult<Certificate> {
    Ok(Certificate {
        id: row.text("id")?,
        order_id: row.text("order_id")?,
        account_id: row.text("account_id")?,
        serial: row.text("serial")?,
        chain_pem: row.text("chain_pem")?,
        not_before: time(row.int("not_before")?)?,
        not_after: time(row.int("not_after")?)?,
        created_at: time(row.int("created_at")?)?,
    })
}

/// A certificate row with the renewal columns of migration 0006.
pub(crate) fn renewal_state(row: &impl Columns) -> StoreResult<RenewalState> {
    let window = match (
        opt_time(row.opt_int("renewal_window_start")?)?,
        opt_time(row.opt_int("renewal_window_end")?)?,
    ) {
        (Some(start), Some(end)) => Some((start, end)),
        _ => None,
    };
    Ok(RenewalState {
        certificate: certificate(row)?,
        revoked_at: opt_time(row.opt_int("revoked_at")?)?,
        replaced_by_order: row.opt_text("replaced_by_order")?,
        window,
    })
}

pub(crate) fn revoked_certificate(row: &impl Columns) -> StoreResult<RevokedCertificate> {
    let reason = row.int("revocation_reason")?;
    Ok(RevokedCertificate {
        serial: row.text("serial")?,
        not_after: time(row.int("not_after")?)?,
        revoked_at: time(row.int("revoked_at")?)?,
        reason: u8::try_from(reason)
            .map_err(|_| other(format!("stored revocation reason {reason} is out of range")))?,
    })
}

/// `authorizations` in the order of `ids`; `NotFound` if one is missing.
pub(crate) fn in_order(
    ids: &[String],
    authorizations: Vec<Authorization>,
) -> StoreResult<Vec<Authorization>> {
    let by_id: HashMap<String, Authorization> = authorizations
        .into_iter()
        .map(|a| (a.id.clone(), a))
        .collect();
    pick(ids, &by_id)
}

fn pick(ids: &[String], by_id: &HashMap<String, Authorization>) -> StoreResult<Vec<Authorization>> {
    ids.iter()
        .map(|id| by_id.get(id).cloned().ok_or(StoreError::NotFound))
        .collect()
}

/// Gives each authorization its challenges and returns them in the order of `ids`.
/// `challenges` must already be in insertion (position) order. `NotFound` if an id is missing.
pub(crate) fn with_challenges(
    ids: &[String],
    authorizations: Vec<Authorization>,
    challenges: Vec<Challenge>,
) -> StoreResult<Vec<Authorization>> {
    let mut by_id: HashMap<String, Authorization> = authorizations
        .into_iter()
        .map(|a| (a.id.clone(), a))
        .collect();
    for challenge in challenges {
        if let Some(authorization) = by_id.get_mut(&challenge.authorization_id) {
            authorization.challenges.push(challenge);
        }
    }
    pick(ids, &by_id)
}

/// Checks that every challenge names the authorization it is nested in, before anything is
/// written: storing it under another id would silently move it.
pub(crate) fn check_nesting(authorizations: &[Authorization]) -> StoreResult<()> {
    for authorization in authorizations {
        for challenge in &authorization.challenges {
            if challenge.authorization_id != authorization.id {
                return Err(other(format!(
                    "challenge {} names authorization {} but is nested in {}",
                    challenge.id, challenge.authorization_id, authorization.id
                )));
            }
        }
    }
    Ok(())
}

pub(crate) fn overdue_renewal(row: &impl Columns) -> StoreResult<super::OverdueRenewal> {
    Ok(super::OverdueRenewal {
        certificate_id: row.text("id")?,
        serial: row.text("serial")?,
        account_id: row.text("account_id")?,
        identifiers: from_json("orders.identifiers", &row.text("identifiers")?)?,
        profile: row.opt_text("profile")?,
        not_before: time(row.int("not_before")?)?,
        not_after: time(row.int("not_after")?)?,
        window_end: time(row.int("window_end")?)?,
    })
}

pub(crate) fn renewal_counts(row: &impl Columns) -> StoreResult<super::RenewalCounts> {
    // A group has at least one row, so neither SUM is NULL.
    Ok(super::RenewalCounts {
        profile: row.opt_text("profile")?,
        due: count(row, "due")?,
        overdue: count(row, "overdue")?,
    })
}
// --- admin API (issue 7) ---

/// A certificate row joined with its order's identifiers, with the revocation columns.
pub(crate) fn certificate_record(row: &impl Columns) -> StoreResult<super::CertificateRecord> {
    let reason = row
        .opt_int("revocation_reason")?
        .map(|r| u8::try_from(r).map_err(|_| other(format!("revocation reason {r} out of range"))))
        .transpose()?;
    Ok(super::CertificateRecord {
        certificate: certificate(row)?,
        identifiers: from_json("orders.identifiers", &row.text("identifiers")?)?,
        revoked_at: row.opt_int("revoked_at")?.map(time).transpose()?,
        revocation_reason: reason,
    })
}

/// The `count` column of a `SELECT COUNT(*) AS count`, as u64.
pub(crate) fn count(row: &impl Columns, column: &str) -> StoreResult<u64> {
    let n = row.int(column)?;
    u64::try_from(n).map_err(|_| other(format!("{column} is negative: {n}")))
}
// --- end of admin API (issue 7) ---

// --- audit log and rate limits (issue 7) ---

pub(crate) fn audit_record(row: &impl Columns) -> StoreResult<super::AuditRecord> {
    Ok(super::AuditRecord {
        id: row.int("id")?,
        event: super::AuditEvent {
            at: time(row.int("at")?)?,
            kind: row.text("kind")?,
            actor: row.text("actor")?,
            object: row.text("object")?,
            outcome: row.text("outcome")?,
            detail: from_json("audit_log.detail", &row.text("detail")?)?,
            request_id: row.opt_text("request_id")?,
        },
    })
}

/// The moment a full bucket frees a slot: when its event at `oldest_that_matters` leaves the
/// window.
pub(crate) fn retry_at(
    oldest_that_matters: i64,
    window: time::Duration,
) -> StoreResult<super::RateLimitOutcome> {
    Ok(super::RateLimitOutcome::Exceeded {
        retry_at: time(oldest_that_matters)? + window,
    })
}
// --- end of audit log and rate limits ---
