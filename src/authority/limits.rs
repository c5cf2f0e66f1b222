//! Rate limits (issue 7): new accounts per client address, new orders per account and failed
//! validations per identifier per account, each over a sliding hour.
//!
//! The counts live in the database (`Store::take_rate_limit`), so replicas on one PostgreSQL
//! database share them. Going over answers `rateLimited` (RFC 8555 §6.7, 429) with
//! `Retry-After` (§6.6): the seconds until the oldest counted event leaves the hour. A limit of
//! 0 is off and costs nothing. Buckets are stored as a hash of their name, so the table holds
//! neither addresses nor identifiers.

use std::net::IpAddr;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::{Duration, OffsetDateTime};

use crate::acme::{Identifier, Problem, ProblemType};
use crate::storage::{Account, RateLimitOutcome};

use super::{Authority, Result};

/// Every limit counts over the last hour, as its configuration key says.
pub const WINDOW: Duration = Duration::hours(1);

/// The limits, named as their configuration keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    NewAccountsPerIp,
    NewOrdersPerAccount,
    FailedValidationsPerIdentifierPerAccount,
}

impl Limit {
    /// The key under `[rate_limits]`.
    pub fn key(self) -> &'static str {
        match self {
            Self::NewAccountsPerIp => "new_accounts_per_ip_per_hour",
            Self::NewOrdersPerAccount => "new_orders_per_account_per_hour",
            Self::FailedValidationsPerIdentifierPerAccount => {
                "failed_validations_per_identifier_per_account_per_hour"
            }
        }
    }

    /// What is counted, for the problem's detail.
    fn counts(self) -> &'static str {
        match self {
            Self::NewAccountsPerIp => "new accounts from this address",
            Self::NewOrdersPerAccount => "new orders by this account",
            Self::FailedValidationsPerIdentifierPerAccount => {
                "failed validations of this identifier by this account"
            }
        }
    }
}

/// The stored name of a bucket: a hash of the limit and what it is counted for. The parts
/// are separated by a byte no part contains.
pub fn bucket(limit: Limit, parts: &[&str]) -> String {
    let mut name = limit.key().to_owned();
    for part in parts {
        name.push('\0');
        name.push_str(part);
    }
    URL_SAFE_NO_PAD.encode(digest(&SHA256, name.as_bytes()).as_ref())
}

/// `rateLimited` with `Retry-After`: the limit by name and value, and when to come back.
fn rate_limited(
    limit: Limit,
    value: u32,
    retry_at: OffsetDateTime,
    now: OffsetDateTime,
    subject: &str,
) -> Problem {
    // At least one second: a slot that frees within this second is not free yet.
    let seconds = u64::try_from((retry_at - now).whole_seconds())
        .unwrap_or(0)
        .max(1);
    let mut problem = Problem::new(
        ProblemType::RateLimited,
        format!(
            "too many {} ({subject}): the limit is {value} per hour \
             (rate_limits.{}); retry after {seconds} seconds",
            limit.counts(),
            limit.key(),
        ),
    );
    problem.retry_after = Some(seconds);
    problem
}

impl Authority {
    /// The configured value of `limit`; 0 is off.
    fn limit_value(&self, limit: Limit) -> u32 {
        let config = &self.settings.rate_limits;
        match limit {
            Limit::NewAccountsPerIp => config.new_accounts_per_ip_per_hour,
            Limit::NewOrdersPerAccount => config.new_orders_per_account_per_hour,
            Limit::FailedValidationsPerIdentifierPerAccount => {
                config.failed_validations_per_identifier_per_account_per_hour
            }
        }
    }

    /// Takes one slot of `limit` for `parts`, or refuses with `rateLimited`.
    async fn take(&self, limit: Limit, parts: &[&str], subject: &str) -> Result<()> {
        let value = self.limit_value(limit);
        if value == 0 {
            return Ok(());
        }
        let now = self.now();
        let outcome = self
            .store
            .take_rate_limit(&bucket(limit, parts), value, WINDOW, now)
            .await?;
        match outcome {
            RateLimitOutcome::Allowed => Ok(()),
            RateLimitOutcome::Exceeded { retry_at } => {
                tracing::warn!(limit = limit.key(), value, subject, "rate limit hit");
                Err(rate_limited(limit, value, retry_at, now, subject).into())
            }
        }
    }

    /// One more account from `client` (newAccount, only when one is created). A request with
    /// no known address (an in-process caller) is not limited.
    pub(super) async fn take_new_account_slot(&self, client: Option<IpAddr>) -> Result<()> {
        let Some(client) = client else {
            return Ok(());
        };
        let address = client.to_canonical().to_string();
        self.take(Limit::NewAccountsPerIp, &[&address], &address)
            .await
    }

    /// One more order by `account` (newOrder).
    pub(super) async fn take_new_order_slot(&self, account: &Account) -> Result<()> {
        self.take(
            Limit::NewOrdersPerAccount,
            &[&account.id],
            &format!("account {}", account.id),
        )
        .await
    }

    /// Refuses an order or authorization for an identifier whose validations by `account`
    /// failed too often in the last hour (newOrder, newAuthz).
    pub(super) async fn check_failed_validations(
        &self,
        account: &Account,
        identifiers: &[Identifier],
    ) -> Result<()> {
        let limit = Limit::FailedValidationsPerIdentifierPerAccount;
        let value = self.limit_value(limit);
        if value == 0 {
            return Ok(());
        }
        let now = self.now();
        for identifier in identifiers {
            let name = identifier.to_string();
            let outcome = self
                .store
                .check_rate_limit(&bucket(limit, &[&account.id, &name]), value, WINDOW, now)
                .await?;
            if let RateLimitOutcome::Exceeded { retry_at } = outcome {
                tracing::warn!(limit = limit.key(), value, %identifier, account = %account.id, "rate limit hit");
                let problem = rate_limited(limit, value, retry_at, now, &identifier.value())
                    .with_identifier(identifier.clone());
                return Err(problem.into());
            }
        }
        Ok(())
    }

    /// Counts a failed validation of `identifier` by the account `account_id`. A failure to
    /// count is logged, not returned: the validation's own result is what matters.
    pub(super) async fn count_failed_validation(&self, account_id: &str, identifier: &Identifier) {
        let limit = Limit::FailedValidationsPerIdentifierPerAccount;
        if self.limit_value(limit) == 0 {
            return;
        }
        let name = identifier.to_string();
        if let Err(e) = self
            .store
            .add_rate_limit_event(&bucket(limit, &[account_id, &name]), self.now())
            .await
        {
            tracing::error!(error = %e, account = account_id, %identifier, "counting a failed validation failed");
        }
    }

    /// Forgets counted events older than every window; returns how many.
    pub async fn prune_rate_limits(&self) -> Result<u64> {
        Ok(self.store.prune_rate_limits(self.now() - WINDOW).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_differ_by_limit_and_parts() {
        let cases = [
            (
                "another limit",
                bucket(Limit::NewOrdersPerAccount, &["a"]),
                bucket(Limit::NewAccountsPerIp, &["a"]),
            ),
            (
                "parts are not concatenated",
                bucket(
                    Limit::FailedValidationsPerIdentifierPerAccount,
                    &["ab", "c"],
                ),
                bucket(
                    Limit::FailedValidationsPerIdentifierPerAccount,
                    &["a", "bc"],
                ),
            ),
        ];
        for (case, one, other) in cases {
            assert_ne!(one, other, "{case}");
        }
        assert_eq!(
            bucket(Limit::NewOrdersPerAccount, &["a"]),
            bucket(Limit::NewOrdersPerAccount, &["a"])
        );
    }

    #[test]
    fn retry_after_is_whole_seconds_and_at_least_one() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(1);
        let cases = [
            ("later", now + Duration::seconds(90), 90),
            ("this second", now, 1),
            ("past", now - Duration::seconds(5), 1),
        ];
        for (case, retry_at, want) in cases {
            let problem = rate_limited(Limit::NewOrdersPerAccount, 3, retry_at, now, "x");
            assert_eq!(problem.retry_after, Some(want), "{case}");
            assert_eq!(problem.status, 429, "{case}");
            assert!(
                problem
                    .detail
                    .contains("rate_limits.new_orders_per_account_per_hour"),
                "{case}: {}",
                problem.detail
            );
        }
    }
}
