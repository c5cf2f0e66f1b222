//! A `Store` that times every call: `mayfly_db_query_duration_seconds`, by operation (the
//! trait method), for `/metrics`. Wrapped around the real store when metrics are on; one
//! `Instant` pair and one histogram sample per call.
//!
//! The method list below repeats the trait's signatures: a method added to `Store` and not
//! here does not compile, so none goes unmeasured.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use super::{
    Account, AccountCursor, AuditEvent, AuditFilter, AuditRecord, Authorization, Certificate,
    CertificateCounts, CertificateCursor, CertificateFilter, CertificateRecord, Challenge, EabKey,
    EabRefusal, Order, OrderCursor, OverdueRenewal, Purged, RateLimitOutcome, RenewalCounts,
    RenewalQuery, RenewalState, RevokedCertificate, Store, StoreResult,
};
use crate::acme::{ChallengeStatus, Identifier, Problem};

/// The histogram's name.
pub const METRIC: &str = "mayfly_db_query_duration_seconds";

pub struct Metered {
    inner: Arc<dyn Store>,
}

impl Metered {
    pub fn wrap(inner: Arc<dyn Store>) -> Arc<dyn Store> {
        Arc::new(Metered { inner })
    }
}

fn record(operation: &'static str, started: Instant) {
    metrics::histogram!(METRIC, "operation" => operation).record(started.elapsed().as_secs_f64());
}

macro_rules! metered {
    ($(fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)+) => {
        #[async_trait]
        impl Store for Metered {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    let started = Instant::now();
                    let result = self.inner.$name($($arg),*).await;
                    record(stringify!($name), started);
                    result
                }
            )+
        }
    };
}

metered! {
    fn ping(&self) -> StoreResult<()>;
    fn close(&self) -> ();
    fn setting_or_insert(&self, key: &str, value: &str) -> StoreResult<String>;
    fn redeem_nonce(&self, nonce: &str, expires_at: OffsetDateTime) -> StoreResult<bool>;
    fn redeem_nonce_reading_account(
        &self,
        nonce: &str,
        expires_at: OffsetDateTime,
        account_id: &str
    ) -> StoreResult<(bool, Option<Account>)>;
    fn prune_nonces(&self, now: OffsetDateTime) -> StoreResult<u64>;
    fn use_token(&self, provisioner: &str, token_id: &str, expires_at: OffsetDateTime) -> StoreResult<bool>;
    fn prune_used_tokens(&self, now: OffsetDateTime) -> StoreResult<u64>;
    fn insert_account(&self, account: &Account) -> StoreResult<()>;
    fn account(&self, id: &str) -> StoreResult<Account>;
    fn account_by_thumbprint(&self, thumbprint: &str) -> StoreResult<Account>;
    fn update_account_contact(&self, id: &str, contact: &[String]) -> StoreResult<()>;
    fn deactivate_account(&self, id: &str) -> StoreResult<bool>;
    fn change_account_key(&self, id: &str, old_thumbprint: &str, new_thumbprint: &str, new_jwk: &serde_json::Value) -> StoreResult<bool>;
    fn orders_by_account(&self, account_id: &str, after: Option<&OrderCursor>, now: OffsetDateTime, limit: u32) -> StoreResult<Vec<Order>>;
    fn insert_eab_key(&self, key: &EabKey) -> StoreResult<()>;
    fn eab_key(&self, id: &str) -> StoreResult<EabKey>;
    fn eab_keys(&self) -> StoreResult<Vec<EabKey>>;
    fn revoke_eab_key(&self, id: &str, at: OffsetDateTime) -> StoreResult<bool>;
    fn insert_account_with_eab(&self, account: &Account, eab_key_id: &str) -> StoreResult<Result<(), EabRefusal>>;
    fn account_eab_key(&self, account_id: &str) -> StoreResult<Option<EabKey>>;
    fn insert_order(&self, order: &Order, new_authorizations: &[Authorization]) -> StoreResult<()>;
    fn order(&self, id: &str) -> StoreResult<Order>;
    fn authorization(&self, id: &str) -> StoreResult<Authorization>;
    fn authorizations(&self, ids: &[String]) -> StoreResult<Vec<Authorization>>;
    fn order_with_authorizations(&self, id: &str) -> StoreResult<(Order, Vec<Authorization>)>;
    fn challenge(&self, id: &str) -> StoreResult<Challenge>;
    fn authorization_of_challenge(&self, challenge_id: &str) -> StoreResult<Authorization>;
    fn valid_authorization(&self, account_id: &str, identifier: &Identifier, valid_at: OffsetDateTime) -> StoreResult<Option<Authorization>>;
    fn insert_authorization(&self, authorization: &Authorization) -> StoreResult<()>;
    fn transition_challenge(&self, id: &str, from: ChallengeStatus, to: ChallengeStatus, validated_at: Option<OffsetDateTime>, error: Option<&Problem>) -> StoreResult<bool>;
    fn validate_challenge_with_token(&self, id: &str, from: ChallengeStatus, identity: &serde_json::Value, at: OffsetDateTime) -> StoreResult<bool>;
    fn begin_finalize(&self, order_id: &str, at: OffsetDateTime) -> StoreResult<bool>;
    fn complete_order(&self, certificate: &Certificate) -> StoreResult<()>;
    fn fail_order(&self, order_id: &str, error: &Problem) -> StoreResult<()>;
    fn certificate(&self, id: &str) -> StoreResult<Certificate>;
    fn certificate_by_serial(&self, serial: &str) -> StoreResult<Certificate>;
    fn renewal_state(&self, serial: &str) -> StoreResult<RenewalState>;
    fn insert_replacing_order(&self, order: &Order, new_authorizations: &[Authorization], replaced_certificate_id: &str, now: OffsetDateTime) -> StoreResult<bool>;
    fn set_renewal_window(&self, certificate_id: &str, window: Option<(OffsetDateTime, OffsetDateTime)>) -> StoreResult<()>;
    fn revoke_certificate(&self, id: &str, reason: u8, at: OffsetDateTime) -> StoreResult<bool>;
    fn revoked_certificates(&self, now: OffsetDateTime) -> StoreResult<Vec<RevokedCertificate>>;
    fn next_crl_number(&self, issuer: &str) -> StoreResult<i64>;
    fn has_valid_authorization(&self, account_id: &str, identifier: &Identifier, now: OffsetDateTime) -> StoreResult<bool>;
    fn acquire_lease(&self, job: &str, holder: &str, now: OffsetDateTime, until: OffsetDateTime) -> StoreResult<bool>;
    fn release_lease(&self, job: &str, holder: &str) -> StoreResult<()>;
    fn purge_expired(&self, before: OffsetDateTime, batch: u32) -> StoreResult<Purged>;
    fn overdue_renewals(&self, query: &RenewalQuery, limit: u32) -> StoreResult<Vec<OverdueRenewal>>;
    fn mark_renewal_alerted(&self, certificate_id: &str, at: OffsetDateTime) -> StoreResult<bool>;
    fn renewal_counts(&self, query: &RenewalQuery) -> StoreResult<Vec<RenewalCounts>>;
    fn certificate_records(&self, filter: &CertificateFilter, after: Option<&CertificateCursor>, now: OffsetDateTime, limit: u32) -> StoreResult<Vec<CertificateRecord>>;
    fn certificate_record(&self, serial: &str) -> StoreResult<CertificateRecord>;
    fn certificate_counts(&self, now: OffsetDateTime) -> StoreResult<CertificateCounts>;
    fn accounts_page(&self, after: Option<&AccountCursor>, limit: u32) -> StoreResult<Vec<Account>>;
    fn append_audit(&self, events: &[AuditEvent]) -> StoreResult<()>;
    fn audit_events(&self, filter: &AuditFilter, before: Option<i64>, limit: u32) -> StoreResult<Vec<AuditRecord>>;
    fn complete_order_audited(&self, certificate: &Certificate, event: &AuditEvent) -> StoreResult<()>;
    fn revoke_certificate_audited(&self, id: &str, reason: u8, at: OffsetDateTime, event: &AuditEvent) -> StoreResult<bool>;
    fn take_rate_limit(&self, bucket: &str, limit: u32, window: Duration, now: OffsetDateTime) -> StoreResult<RateLimitOutcome>;
    fn check_rate_limit(&self, bucket: &str, limit: u32, window: Duration, now: OffsetDateTime) -> StoreResult<RateLimitOutcome>;
    fn add_rate_limit_event(&self, bucket: &str, at: OffsetDateTime) -> StoreResult<()>;
    fn prune_rate_limits(&self, before: OffsetDateTime) -> StoreResult<u64>;
}
