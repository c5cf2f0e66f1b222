//! The periodic jobs' use cases (issue 7): leases, purges and renewal alerts. The scheduling
//! lives in `crate::jobs`; what the jobs read and write is here, since the authority is the
//! only writer to storage.

use time::Duration;

use crate::policy::renewal::{Fraction, RenewalSettings};
use crate::storage::{OverdueRenewal, Purged, RenewalCounts, RenewalQuery};

use super::{Authority, Result};

/// Rows deleted per purge transaction: a short write lock each, so requests are not held up
/// behind a large purge on SQLite.
const PURGE_BATCH: u32 = 500;

impl Authority {
    /// Takes or renews this replica's lease on `job` for `ttl`; true if it holds it now.
    pub async fn hold_lease(&self, job: &str, holder: &str, ttl: Duration) -> Result<bool> {
        let now = self.now();
        Ok(self
            .store
            .acquire_lease(job, holder, now, now + ttl)
            .await?)
    }

    /// Gives the lease on `job` up, at shutdown.
    pub async fn release_lease(&self, job: &str, holder: &str) -> Result<()> {
        Ok(self.store.release_lease(job, holder).await?)
    }

    /// Deletes orders that never got a certificate and unused authorizations, `retention`
    /// after they expired, in batches until none is left.
    pub async fn purge_expired(&self, retention: Duration) -> Result<Purged> {
        let before = self.now() - retention;
        let mut total = Purged::default();
        loop {
            let purged = self.store.purge_expired(before, PURGE_BATCH).await?;
            total.orders += purged.orders;
            total.retained += purged.retained;
            total.authorizations += purged.authorizations;
            if purged.orders < u64::from(PURGE_BATCH)
                && purged.retained < u64::from(PURGE_BATCH)
                && purged.authorizations < u64::from(PURGE_BATCH)
            {
                return Ok(total);
            }
        }
    }

    /// Up to `limit` certificates whose renewal window passed without a renewal and that
    /// were not reported yet.
    pub async fn overdue_renewals(&self, limit: u32) -> Result<Vec<OverdueRenewal>> {
        let query = renewal_query(&self.settings.renewal, self.now());
        Ok(self.store.overdue_renewals(&query, limit).await?)
    }

    /// Records that `certificate_id`'s overdue renewal was reported; false if it already was.
    pub async fn mark_renewal_alerted(&self, certificate_id: &str) -> Result<bool> {
        Ok(self
            .store
            .mark_renewal_alerted(certificate_id, self.now())
            .await?)
    }

    /// Per profile, the certificates due for renewal now and those past their window.
    pub async fn renewal_counts(&self) -> Result<Vec<RenewalCounts>> {
        let query = renewal_query(&self.settings.renewal, self.now());
        Ok(self.store.renewal_counts(&query).await?)
    }
}

/// The renewal settings as the database's window computation takes them.
pub fn renewal_query(settings: &RenewalSettings, now: time::OffsetDateTime) -> RenewalQuery {
    let ratio = |f: Fraction| {
        let (n, d) = f.parts();
        (i64::from(n), i64::from(d))
    };
    RenewalQuery {
        now,
        short_threshold_secs: settings.short_threshold.0.whole_seconds(),
        short_centre: ratio(settings.short_centre),
        short_margin: ratio(settings.short_margin),
        long_centre: ratio(settings.long_centre),
        long_margin: ratio(settings.long_margin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::renewal::suggested_window;
    use time::macros::datetime;

    /// The database's window (integer arithmetic on Unix seconds) agrees with the one
    /// renewalInfo answers, for short and long lifetimes.
    #[test]
    fn database_windows_match_suggested_windows() {
        let settings = RenewalSettings::default();
        let now = datetime!(2026-01-01 00:00 UTC);
        let query = renewal_query(&settings, now);
        let not_before = datetime!(2026-01-01 00:00 UTC);
        for hours in [1_i64, 24, 160, 239, 240, 2160] {
            let not_after = not_before + Duration::hours(hours);
            let expected = suggested_window(not_before, not_after, false, now, &settings);
            let lifetime = (not_after - not_before).whole_seconds();
            let ((cn, cd), (mn, md)) = if lifetime < query.short_threshold_secs {
                (query.short_centre, query.short_margin)
            } else {
                (query.long_centre, query.long_margin)
            };
            // The SQL of storage::jobs_sql, in Rust.
            let centre = not_before.unix_timestamp() + lifetime * cn / cd;
            let margin = lifetime * mn / md;
            assert_eq!(
                centre - margin,
                expected.start.unix_timestamp(),
                "{hours} h start"
            );
            assert_eq!(
                centre + margin,
                expected.end.unix_timestamp(),
                "{hours} h end"
            );
        }
    }
}
