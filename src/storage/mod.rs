//! Persistence: one `Store` trait, a SQLite and a PostgreSQL implementation, one contract test
//! suite (`tests/storage_contract.rs`) run against both.
//!
//! Only the authority writes. Every state change that two replicas could race on is a
//! conditional update that reports whether it took effect (ARCHITECTURE decision 2).
//! Times are stored as whole Unix seconds.

use std::sync::Arc;

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use crate::acme::{AccountStatus, ChallengeStatus, Identifier, Problem};

mod group_commit;
mod jobs_sql;
pub mod metered;
pub mod postgres;
mod rows;
pub mod sqlite;

/// Database errors, normalised across backends.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique key was violated; the text names the key.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    /// Random URL-safe id; the account URL is `<base>/acme/account/<id>`.
    pub id: String,
    /// RFC 7638 thumbprint of the account key; unique.
    pub key_thumbprint: String,
    /// The account key as a JWK (JSON object).
    pub jwk: serde_json::Value,
    pub contact: Vec<String>,
    pub status: AccountStatus,
    pub created_at: OffsetDateTime,
    /// The ACME provisioner whose directory created the account (issue 6); its policy applies
    /// to the account's orders. [`crate::provisioner::DEFAULT_ACME`] for the default one.
    pub provisioner: String,
}

// --- Accounts (issue 3): External Account Binding keys and the orders-list cursor ---

/// An External Account Binding key (RFC 8555 §7.3.4), created by the operator.
#[derive(Clone, PartialEq, Eq)]
pub struct EabKey {
    /// The `kid` clients put in the binding's protected header; random and URL-safe.
    pub id: String,
    /// The HMAC key. Never logged: `Debug` leaves it out.
    pub hmac_key: Vec<u8>,
    /// Free text for the operator; later policy (the server_group validator) reads it.
    pub label: String,
    /// A reusable key may bind any number of accounts; otherwise it binds one.
    pub reusable: bool,
    pub created_at: OffsetDateTime,
    /// Set when the operator revoked it; a revoked key binds no new account.
    pub revoked_at: Option<OffsetDateTime>,
    /// How many accounts it bound.
    pub use_count: u64,
    /// The provisioner whose policy the accounts bound with this key get (issue 6); `None`:
    /// the policy of the directory the account was created at.
    pub provisioner: Option<String>,
}

impl std::fmt::Debug for EabKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EabKey")
            .field("id", &self.id)
            .field("hmac_key", &"REDACTED")
            .field("label", &self.label)
            .field("reusable", &self.reusable)
            .field("created_at", &self.created_at)
            .field("revoked_at", &self.revoked_at)
            .field("use_count", &self.use_count)
            .field("provisioner", &self.provisioner)
            .finish()
    }
}

/// A position in an account's orders list: the last order of the previous page. Orders are
/// listed newest first, by `(created_at, id)` descending, so the position stays valid while
/// new orders arrive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderCursor {
    pub created_at: OffsetDateTime,
    pub id: String,
}

/// Why `insert_account_with_eab` did not bind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EabRefusal {
    Unknown,
    Revoked,
    /// A single-use key that already bound an account.
    Used,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    pub id: String,
    pub account_id: String,
    /// In the order the client sent them, normalised and de-duplicated.
    pub identifiers: Vec<Identifier>,
    /// The authorizations of this order, in the order of `identifiers`.
    pub authorization_ids: Vec<String>,
    pub not_before: Option<OffsetDateTime>,
    pub not_after: Option<OffsetDateTime>,
    pub expires: OffsetDateTime,
    pub created_at: OffsetDateTime,
    /// Set when finalization began; the order is `processing` until a certificate or an error.
    pub processing_since: Option<OffsetDateTime>,
    pub certificate_id: Option<String>,
    /// Set when the order failed for a reason other than its authorizations (e.g. issuance).
    pub error: Option<Problem>,
    /// The profile the order was made under (draft-ietf-acme-profiles); `None` only for
    /// orders made before profiles existed, which get the default profile.
    pub profile: Option<String>,
    /// The ARI certificate identifier of the certificate this order replaces (RFC 9773 §5).
    pub replaces: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Authorization {
    pub id: String,
    pub account_id: String,
    pub identifier: Identifier,
    pub expires: OffsetDateTime,
    pub created_at: OffsetDateTime,
    /// Set when the client (or an administrator) deactivated it.
    pub deactivated: bool,
    pub challenges: Vec<Challenge>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Challenge {
    pub id: String,
    pub authorization_id: String,
    /// The challenge type as on the wire, e.g. `http-01`.
    pub kind: String,
    /// base64url, 128 bits of entropy or more (RFC 8555 §8.3).
    pub token: String,
    pub status: ChallengeStatus,
    pub validated_at: Option<OffsetDateTime>,
    pub error: Option<Problem>,
    /// The verified token identity (a serialised `provisioner::TokenIdentity`) that validated
    /// a `tkauth-01` challenge (issue 6); `None` for every other challenge.
    pub token_identity: Option<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Certificate {
    pub id: String,
    pub order_id: String,
    pub account_id: String,
    /// Lower-case hex, no separators; unique.
    pub serial: String,
    /// Leaf then intermediate, PEM.
    pub chain_pem: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub created_at: OffsetDateTime,
}

/// The storage contract. Every method is one transaction.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A trivial query (`SELECT 1`): the database answers. Readiness (`GET /ready`) asks it.
    async fn ping(&self) -> StoreResult<()>;

    /// Closes every connection; later calls fail. For shutdown (and for tests of a database
    /// that went away).
    async fn close(&self);

    /// Returns the stored value of `key`, first storing `value` if there is none. Replicas use
    /// this to agree on shared secrets (the nonce key) without a separate set-up step.
    async fn setting_or_insert(&self, key: &str, value: &str) -> StoreResult<String>;

    /// Records that `nonce` was used. `Ok(true)` the first time, `Ok(false)` on every later
    /// call, from any replica. `expires_at` lets `prune_nonces` forget it.
    async fn redeem_nonce(&self, nonce: &str, expires_at: OffsetDateTime) -> StoreResult<bool>;
    /// `redeem_nonce`, and the account `account_id` as it is at that moment (`None`: there is
    /// no such account), in one round trip where the backend can: a request verified with a
    /// cached account key checks the account's current state here (api::account_keys).
    async fn redeem_nonce_reading_account(
        &self,
        nonce: &str,
        expires_at: OffsetDateTime,
        account_id: &str,
    ) -> StoreResult<(bool, Option<Account>)>;
    /// Deletes redeemed nonces that expired before `now`; returns how many.
    async fn prune_nonces(&self, now: OffsetDateTime) -> StoreResult<u64>;

    /// Records that the token `token_id` of `provisioner` was used (issue 6). `Ok(true)` the
    /// first time, `Ok(false)` on every later call, from any replica. `expires_at` (the
    /// token's `exp`) lets `prune_used_tokens` forget it.
    async fn use_token(
        &self,
        provisioner: &str,
        token_id: &str,
        expires_at: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Deletes used tokens that expired before `now`; returns how many.
    async fn prune_used_tokens(&self, now: OffsetDateTime) -> StoreResult<u64>;

    /// `Conflict` if an account with the same key thumbprint exists.
    async fn insert_account(&self, account: &Account) -> StoreResult<()>;
    async fn account(&self, id: &str) -> StoreResult<Account>;
    async fn account_by_thumbprint(&self, thumbprint: &str) -> StoreResult<Account>;

    // --- Accounts (issue 3): update, deactivation, key change, orders list, EAB ---

    /// Replaces the contact list. `NotFound` if there is no such account.
    async fn update_account_contact(&self, id: &str, contact: &[String]) -> StoreResult<()>;
    /// Moves a `valid` account to `deactivated`. `Ok(false)` if it was not valid; `NotFound`
    /// if there is no such account.
    async fn deactivate_account(&self, id: &str) -> StoreResult<bool>;
    /// Replaces the account key, only if the current thumbprint is still `old_thumbprint`.
    /// `Ok(false)` if it was not (a concurrent key change won); `Conflict` naming
    /// `accounts.key_thumbprint` if another account holds the new key; `NotFound` if there is
    /// no such account.
    async fn change_account_key(
        &self,
        id: &str,
        old_thumbprint: &str,
        new_thumbprint: &str,
        new_jwk: &serde_json::Value,
    ) -> StoreResult<bool>;
    /// Up to `limit` orders of the account, newest first (`created_at`, then `id`, both
    /// descending), starting after `after`. Leaves out the orders whose own row already makes
    /// them invalid at `now`: those with an error, and those that expired with neither a
    /// certificate nor a finalization under way.
    async fn orders_by_account(
        &self,
        account_id: &str,
        after: Option<&OrderCursor>,
        now: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<Order>>;

    /// `Conflict` if a key with the same id exists.
    async fn insert_eab_key(&self, key: &EabKey) -> StoreResult<()>;
    async fn eab_key(&self, id: &str) -> StoreResult<EabKey>;
    /// Every key, oldest first.
    async fn eab_keys(&self) -> StoreResult<Vec<EabKey>>;
    /// Marks the key revoked at `at`. `Ok(false)` if it already was; `NotFound` if there is
    /// no such key.
    async fn revoke_eab_key(&self, id: &str, at: OffsetDateTime) -> StoreResult<bool>;
    /// Inserts the account bound to the EAB key `eab_key_id` and counts one use of the key,
    /// in one transaction, only if the key exists, is not revoked, and is reusable or unused.
    /// `Ok(Err(refusal))` if not (nothing is written); `Conflict` as `insert_account`.
    async fn insert_account_with_eab(
        &self,
        account: &Account,
        eab_key_id: &str,
    ) -> StoreResult<Result<(), EabRefusal>>;
    /// The EAB key that bound the account, if one did. `NotFound` if there is no such account.
    async fn account_eab_key(&self, account_id: &str) -> StoreResult<Option<EabKey>>;
    // --- end of accounts (issue 3) ---

    /// Inserts the new authorizations (with their challenges) and the order, which may also
    /// refer to existing authorizations by id, in one transaction.
    async fn insert_order(
        &self,
        order: &Order,
        new_authorizations: &[Authorization],
    ) -> StoreResult<()>;
    async fn order(&self, id: &str) -> StoreResult<Order>;
    /// The authorization with its challenges, in insertion order.
    async fn authorization(&self, id: &str) -> StoreResult<Authorization>;
    /// Several authorizations with their challenges, in the order of `ids`; `NotFound` if any
    /// is missing.
    async fn authorizations(&self, ids: &[String]) -> StoreResult<Vec<Authorization>>;
    /// The order and its authorizations with their challenges, in the order's position
    /// order: what deriving the order's status needs, in one call.
    async fn order_with_authorizations(&self, id: &str)
    -> StoreResult<(Order, Vec<Authorization>)>;
    async fn challenge(&self, id: &str) -> StoreResult<Challenge>;
    /// The authorization that challenge `challenge_id` belongs to, with all its challenges,
    /// in one call.
    async fn authorization_of_challenge(&self, challenge_id: &str) -> StoreResult<Authorization>;
    /// The account's authorization for exactly `identifier` (a wildcard matches only a
    /// wildcard) that has a valid challenge, is not deactivated and expires after `valid_at`;
    /// of several, the one that expires last. Orders and newAuthz reuse it (RFC 8555 §7.4).
    async fn valid_authorization(
        &self,
        account_id: &str,
        identifier: &Identifier,
        valid_at: OffsetDateTime,
    ) -> StoreResult<Option<Authorization>>;
    /// Inserts an authorization with its challenges outside any order (newAuthz, RFC 8555
    /// §7.4.1). `NotFound` if the account does not exist.
    async fn insert_authorization(&self, authorization: &Authorization) -> StoreResult<()>;

    /// Moves a challenge from `from` to `to`, recording `validated_at` and `error`, only if its
    /// status is still `from`. `Ok(false)` if another request got there first.
    async fn transition_challenge(
        &self,
        id: &str,
        from: ChallengeStatus,
        to: ChallengeStatus,
        validated_at: Option<OffsetDateTime>,
        error: Option<&Problem>,
    ) -> StoreResult<bool>;

    /// Moves a challenge from `from` to `valid`, recording `validated_at = at` and the token
    /// identity that validated it (`tkauth-01`), only if its status is still `from`.
    /// `Ok(false)` if another request got there first; `NotFound` if there is no such
    /// challenge.
    async fn validate_challenge_with_token(
        &self,
        id: &str,
        from: ChallengeStatus,
        identity: &serde_json::Value,
        at: OffsetDateTime,
    ) -> StoreResult<bool>;

    /// Marks the order as being finalized, only if it has no `processing_since`, no
    /// certificate and no error. `Ok(false)` if it had.
    async fn begin_finalize(&self, order_id: &str, at: OffsetDateTime) -> StoreResult<bool>;
    /// Inserts the certificate and links it to its order, in one transaction.
    async fn complete_order(&self, certificate: &Certificate) -> StoreResult<()>;
    /// Records why the order failed.
    async fn fail_order(&self, order_id: &str, error: &Problem) -> StoreResult<()>;
    async fn certificate(&self, id: &str) -> StoreResult<Certificate>;

    // Revocation and CRLs (RFC 8555 §7.6, RFC 5280 §5).
    /// The certificate with this serial (lower-case hex, as [`Certificate::serial`]).
    async fn certificate_by_serial(&self, serial: &str) -> StoreResult<Certificate>;

    // --- ACME Renewal Information (RFC 9773), issue 4 ---
    /// What renewalInfo and `replaces` need about the certificate with this serial (as
    /// [`Certificate::serial`]). `NotFound` if there is none.
    async fn renewal_state(&self, serial: &str) -> StoreResult<RenewalState>;
    /// Inserts the order as `insert_order` does and, in the same transaction, marks the
    /// certificate `replaced_certificate_id` as replaced by it, only if no order replaces it
    /// yet, or the order that did can no longer produce a certificate at `now` (it has an
    /// error, or it expired unfinished). `Ok(false)`, with nothing written, if another order
    /// holds it (on any replica); `NotFound` if there is no such certificate.
    async fn insert_replacing_order(
        &self,
        order: &Order,
        new_authorizations: &[Authorization],
        replaced_certificate_id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Sets the renewal window an administrator chose for the certificate; `None` returns it
    /// to the computed one. `NotFound` if there is no such certificate.
    async fn set_renewal_window(
        &self,
        certificate_id: &str,
        window: Option<(OffsetDateTime, OffsetDateTime)>,
    ) -> StoreResult<()>;
    // --- end of ACME Renewal Information ---
    /// Marks the certificate revoked at `at` for `reason`, only if it is not revoked yet.
    /// `Ok(false)` if it already was (by this request's twin on any replica); `NotFound` if
    /// there is no such certificate.
    async fn revoke_certificate(
        &self,
        id: &str,
        reason: u8,
        at: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Every revoked certificate that has not expired at `now` (`not_after > now`), by serial.
    async fn revoked_certificates(
        &self,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<RevokedCertificate>>;
    /// The next CRL number of `issuer`: 1 the first time, then one more on every call, from
    /// any replica; never the same number twice.
    async fn next_crl_number(&self, issuer: &str) -> StoreResult<i64>;
    /// Whether `account_id` holds an authorization for `identifier` that is valid at `now`: a
    /// valid challenge, not deactivated, not expired (the rules of `authority::state`).
    async fn has_valid_authorization(
        &self,
        account_id: &str,
        identifier: &Identifier,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;

    // --- periodic jobs (issue 7) ---
    /// Takes or renews the lease on `job` for `holder` until `until`: only if nobody holds
    /// it, `holder` already does, or the holder's lease ran out by `now`. True if `holder`
    /// holds it now. One conditional upsert, so of two replicas racing one wins.
    async fn acquire_lease(
        &self,
        job: &str,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Gives up `holder`'s lease on `job` (at shutdown), so another replica need not wait
    /// for it to run out.
    async fn release_lease(&self, job: &str, holder: &str) -> StoreResult<()>;
    /// Deletes up to `batch` orders without a certificate that expired before `before`, and
    /// up to `batch` authorizations (with their challenges) that expired before `before` and
    /// that no remaining order refers to, in one transaction. A certificate marked as
    /// replaced by a deleted order is released, as if the order had failed (RFC 9773 §5).
    async fn purge_expired(&self, before: OffsetDateTime, batch: u32) -> StoreResult<Purged>;
    /// Up to `limit` valid, unrevoked certificates whose renewal window ended by `now`
    /// without a renewal and that were not reported yet, soonest expiry first. See
    /// [`RenewalQuery`] for what counts as a renewal.
    async fn overdue_renewals(
        &self,
        query: &RenewalQuery,
        limit: u32,
    ) -> StoreResult<Vec<OverdueRenewal>>;
    /// Records that the certificate's overdue renewal was reported; false if it already was.
    async fn mark_renewal_alerted(
        &self,
        certificate_id: &str,
        at: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Per profile, how many valid, unrevoked, not yet renewed certificates are inside their
    /// renewal window at `now`, and how many are past it.
    async fn renewal_counts(&self, query: &RenewalQuery) -> StoreResult<Vec<RenewalCounts>>;

    // --- admin API (issue 7) ---
    /// Up to `limit` certificates matching `filter`, oldest first (`created_at`, then `id`),
    /// starting after `after`, with their identifiers and revocation. `now` decides `active`
    /// and `expired`. The name is matched against the identifiers' stored text, so a pattern
    /// with `*` may also match across two identifiers: callers keep the records for which
    /// [`CertificateFilter::matches_name`] holds, and page on the last row returned.
    async fn certificate_records(
        &self,
        filter: &CertificateFilter,
        after: Option<&CertificateCursor>,
        now: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<CertificateRecord>>;
    /// The certificate with this serial, with its identifiers and revocation.
    async fn certificate_record(&self, serial: &str) -> StoreResult<CertificateRecord>;
    /// How many certificates were issued, are active, expired and revoked at `now`, and how
    /// many accounts there are.
    async fn certificate_counts(&self, now: OffsetDateTime) -> StoreResult<CertificateCounts>;
    /// Up to `limit` accounts, oldest first (`created_at`, then `id`), after `after`.
    async fn accounts_page(
        &self,
        after: Option<&AccountCursor>,
        limit: u32,
    ) -> StoreResult<Vec<Account>>;
    // --- end of admin API (issue 7) ---

    // --- audit log and rate limits (issue 7) ---

    /// Appends the events to the audit log, in one transaction, in the order given.
    async fn append_audit(&self, events: &[AuditEvent]) -> StoreResult<()>;
    /// Up to `limit` audit records that match `filter`, newest first (by id, descending),
    /// starting after the record `before` (its id), if given.
    async fn audit_events(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>>;
    /// `complete_order` with `event` appended to the audit log in the same transaction: the
    /// issuance is recorded if and only if it happened.
    async fn complete_order_audited(
        &self,
        certificate: &Certificate,
        event: &AuditEvent,
    ) -> StoreResult<()>;
    /// `revoke_certificate` with `event` appended to the audit log in the same transaction,
    /// only if this call revoked it (`Ok(true)`).
    async fn revoke_certificate_audited(
        &self,
        id: &str,
        reason: u8,
        at: OffsetDateTime,
        event: &AuditEvent,
    ) -> StoreResult<bool>;

    /// Counts one event in `bucket` at `now`, only if fewer than `limit` of its events
    /// happened in the `window` before `now` (`at > now - window`). Check and count are one
    /// step for every replica: two racing callers cannot both take the last slot.
    async fn take_rate_limit(
        &self,
        bucket: &str,
        limit: u32,
        window: Duration,
        now: OffsetDateTime,
    ) -> StoreResult<RateLimitOutcome>;
    /// As `take_rate_limit`, but counts nothing: whether the bucket is full.
    async fn check_rate_limit(
        &self,
        bucket: &str,
        limit: u32,
        window: Duration,
        now: OffsetDateTime,
    ) -> StoreResult<RateLimitOutcome>;
    /// Counts one event in `bucket` at `at`, unconditionally (failed validations: the failure
    /// happened whatever the limit).
    async fn add_rate_limit_event(&self, bucket: &str, at: OffsetDateTime) -> StoreResult<()>;
    /// Forgets rate-limit events that happened before `before`; returns how many.
    async fn prune_rate_limits(&self, before: OffsetDateTime) -> StoreResult<u64>;
    // --- end of audit log and rate limits ---
}

/// What one `purge_expired` call deleted, and the expired authorizations it kept because an
/// order still uses them (each is looked at once, until that order is purged).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub orders: u64,
    pub retained: u64,
    pub authorizations: u64,
}

/// The renewal window of every certificate, as the database computes it: an administrator's
/// window when one was set, otherwise `centre ± margin` of the lifetime as
/// `policy::renewal::suggested_window` gives it (without its one-second minimum margin, which
/// only matters for lifetimes of minutes).
///
/// A certificate counts as renewed when the order replacing it (RFC 9773 §5) has a
/// certificate, or when the same account holds a newer certificate for the same identifiers
/// (clients without ARI renew without `replaces`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenewalQuery {
    pub now: OffsetDateTime,
    /// Lifetimes under this many seconds use the `short` fractions.
    pub short_threshold_secs: i64,
    /// (numerator, denominator) of the window's centre and half-width in the lifetime.
    pub short_centre: (i64, i64),
    pub short_margin: (i64, i64),
    pub long_centre: (i64, i64),
    pub long_margin: (i64, i64),
}

/// A certificate whose renewal window passed without a renewal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverdueRenewal {
    pub certificate_id: String,
    pub serial: String,
    pub account_id: String,
    pub identifiers: Vec<Identifier>,
    pub profile: Option<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub window_end: OffsetDateTime,
}

/// One profile's line of [`Store::renewal_counts`]; `None` is an order without a profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenewalCounts {
    pub profile: Option<String>,
    pub due: u64,
    pub overdue: u64,
}

// --- admin API (issue 7) ---

/// A certificate's status for the operator, at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertificateStatus {
    /// Not revoked, and `not_after` is later than now.
    Active,
    /// Not revoked, and `not_after` has passed.
    Expired,
    Revoked,
}

impl CertificateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateStatus::Active => "active",
            CertificateStatus::Expired => "expired",
            CertificateStatus::Revoked => "revoked",
        }
    }
}

/// Which certificates to list; `None` matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertificateFilter {
    /// A DNS name or IP address among the identifiers; `*` matches any run of characters
    /// (`*.example.com`).
    pub name: Option<String>,
    pub account_id: Option<String>,
    pub status: Option<CertificateStatus>,
    /// Only certificates whose `not_after` is earlier than this.
    pub expiring_before: Option<OffsetDateTime>,
}

impl CertificateFilter {
    /// The SQL `LIKE` pattern (escape `\`) that finds `name` in an order's identifiers JSON
    /// text (`[{"type":"dns","value":"a.example.com"}]`, written by `serde_json` without
    /// spaces).
    pub(crate) fn name_pattern(&self) -> Option<String> {
        let name = self.name.as_deref()?.to_ascii_lowercase();
        let mut escaped = String::new();
        for c in name.chars() {
            match c {
                '%' | '_' | '\\' => {
                    escaped.push('\\');
                    escaped.push(c);
                }
                '*' => escaped.push('%'),
                c => escaped.push(c),
            }
        }
        Some(format!("%\"value\":\"{escaped}\"%"))
    }
}

impl CertificateFilter {
    /// Whether one of `identifiers` matches the name filter (any, when there is none): the
    /// exact check behind the store's text match. `*` matches any run of characters.
    pub fn matches_name(&self, identifiers: &[Identifier]) -> bool {
        let Some(pattern) = &self.name else {
            return true;
        };
        let pattern = pattern.to_ascii_lowercase();
        identifiers.iter().any(|id| glob(&pattern, &id.value()))
    }
}

/// `*` matches any run of characters, everything else itself.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// A position in the certificates list: the last certificate of the previous page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateCursor {
    pub created_at: OffsetDateTime,
    pub id: String,
}

/// A position in the accounts list: the last account of the previous page.
pub type AccountCursor = CertificateCursor;

/// A certificate with what the operator asks about it.
#[derive(Clone, Debug, PartialEq)]
pub struct CertificateRecord {
    pub certificate: Certificate,
    /// The identifiers of the order it was issued for.
    pub identifiers: Vec<Identifier>,
    pub revoked_at: Option<OffsetDateTime>,
    /// RFC 5280 §5.3.1 CRLReason, when revoked.
    pub revocation_reason: Option<u8>,
}

impl CertificateRecord {
    pub fn status(&self, now: OffsetDateTime) -> CertificateStatus {
        if self.revoked_at.is_some() {
            CertificateStatus::Revoked
        } else if self.certificate.not_after > now {
            CertificateStatus::Active
        } else {
            CertificateStatus::Expired
        }
    }
}

/// The totals of the status endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CertificateCounts {
    pub issued: u64,
    pub active: u64,
    pub expired: u64,
    pub revoked: u64,
    pub accounts: u64,
}
// --- end of admin API (issue 7) ---

// --- audit log and rate limits (issue 7) ---

/// One audit log entry as stored. The vocabulary (kinds, actor and object forms) belongs to
/// `authority::audit`; storage keeps the text.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AuditEvent {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// e.g. `certificate.issued`.
    pub kind: String,
    /// Who acted, e.g. `account:<id>`, `admin:<subject>`, `ip:<address>`.
    pub actor: String,
    /// What it acted on, e.g. `serial:<hex>`; empty if nothing.
    pub object: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// The event's facts, a JSON object.
    pub detail: serde_json::Value,
    /// The id of the request that caused it, where known.
    pub request_id: Option<String>,
}

/// A stored audit event with its position in the log.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AuditRecord {
    /// Grows with every append; the paging cursor.
    pub id: i64,
    #[serde(flatten)]
    pub event: AuditEvent,
}

/// Which audit records to read; every `None` matches everything. Text fields match exactly.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub kind: Option<String>,
    pub actor: Option<String>,
    pub object: Option<String>,
    /// At or after.
    pub since: Option<OffsetDateTime>,
    /// Before.
    pub until: Option<OffsetDateTime>,
}

/// What a rate-limit check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimitOutcome {
    /// Below the limit (and, for `take_rate_limit`, counted).
    Allowed,
    /// At the limit; a slot frees at `retry_at`, when the oldest event that matters leaves
    /// the window.
    Exceeded { retry_at: OffsetDateTime },
}
// --- end of audit log and rate limits ---

/// A certificate with its renewal facts (RFC 9773).
#[derive(Clone, Debug, PartialEq)]
pub struct RenewalState {
    pub certificate: Certificate,
    pub revoked_at: Option<OffsetDateTime>,
    /// The order that replaces it (RFC 9773 §5), if one does.
    pub replaced_by_order: Option<String>,
    /// The window an administrator chose, `(start, end)`, if one did.
    pub window: Option<(OffsetDateTime, OffsetDateTime)>,
}

/// A revoked certificate, as a CRL lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedCertificate {
    /// Lower-case hex, as [`Certificate::serial`].
    pub serial: String,
    pub not_after: OffsetDateTime,
    pub revoked_at: OffsetDateTime,
    /// RFC 5280 §5.3.1 CRLReason.
    pub reason: u8,
}

/// Opens the database named by `url` (`sqlite://…` or `postgres://…`), applying migrations.
pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            sqlite::SqliteStore::connect(url, max_connections).await?,
        ))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            postgres::PostgresStore::connect(url, max_connections).await?,
        ))
    } else {
        // Only the scheme is echoed: the rest of the URL may hold a password.
        let scheme = url.split_once(':').map_or("(none)", |(scheme, _)| scheme);
        Err(rows::other(format!(
            "database.url must start with sqlite:, postgres:// or postgresql:// (scheme {scheme:?})"
        )))
    }
}

#[cfg(test)]
mod admin_filter_tests {
    use super::*;

    #[test]
    fn name_patterns_match_one_identifier_at_a_time() {
        let ids = |names: &[&str]| -> Vec<Identifier> {
            names
                .iter()
                .map(|n| Identifier::parse("dns", n).expect("a name"))
                .collect()
        };
        let cases = [
            ("a.example.com", &["a.example.com"][..], true),
            ("A.Example.com", &["a.example.com"][..], true),
            ("*.example.com", &["a.example.com"][..], true),
            ("*.example.com", &["example.com"][..], false),
            (
                "*.example.com",
                &["a.example.org", "b.example.com"][..],
                true,
            ),
            // Across two identifiers is no match, though the stored text would match.
            ("a*z.test", &["a.one", "z.test"][..], false),
            ("a*z.test", &["abz.test"][..], true),
            ("www.*.test", &["www.b.test"][..], true),
            ("*", &["anything.test"][..], true),
            ("a.example.com", &["a.example.com.evil"][..], false),
        ];
        for (pattern, names, expected) in cases {
            let filter = CertificateFilter {
                name: Some(pattern.to_owned()),
                ..Default::default()
            };
            assert_eq!(
                filter.matches_name(&ids(names)),
                expected,
                "{pattern} on {names:?}"
            );
        }
        assert!(CertificateFilter::default().matches_name(&[]));
    }
}
