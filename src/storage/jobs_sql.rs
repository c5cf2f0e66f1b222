//! The SQL of the periodic jobs' queries (issue 7), written once for both backends: sqlx
//! binds SQLite's `$N` parameters by number, as PostgreSQL does. Built once, so that both
//! drivers' prepared-statement caches see the same text every time.

use std::sync::LazyLock;

/// Takes or renews a lease. Binds: job, holder, now, until.
pub(crate) const ACQUIRE_LEASE: &str = "INSERT INTO job_leases (job, holder, expires_at) \
     VALUES ($1, $2, $4) ON CONFLICT (job) DO UPDATE \
     SET holder = excluded.holder, expires_at = excluded.expires_at \
     WHERE job_leases.holder = excluded.holder OR job_leases.expires_at <= $3";

/// Binds: job, holder.
pub(crate) const RELEASE_LEASE: &str = "DELETE FROM job_leases WHERE job = $1 AND holder = $2";

/// The orders one purge batch deletes. Binds: before, batch.
const PURGED_ORDERS: &str = "SELECT id FROM orders WHERE certificate_id IS NULL \
     AND expires < $1 ORDER BY expires, id LIMIT $2";

/// Purge candidates (migration 0011_purge_scale) that expired, and that an order still uses
/// (`EXISTS`: the batch clears their candidacy) or that none does (`NOT EXISTS`: the batch
/// deletes them).
fn expired_candidates(exists: &str) -> String {
    format!(
        "SELECT a.id FROM authorizations a WHERE a.purge_candidate = 1 AND a.expires < $1 \
         AND {exists} (SELECT 1 FROM order_authorizations oa WHERE oa.authorization_id = a.id) \
         ORDER BY a.expires, a.id LIMIT $2"
    )
}

/// One purge batch, in this order (foreign keys point from the later rows to the earlier
/// ones). Each binds: before, batch. An authorization an issued order uses is looked at once
/// after it expires, not on every run: the purge clears its candidacy, and only the purge of
/// another order that used it sets it again.
pub(crate) static PURGE: LazyLock<[String; 7]> = LazyLock::new(|| {
    let (retained, purged) = (
        expired_candidates("EXISTS"),
        expired_candidates("NOT EXISTS"),
    );
    [
        format!(
            "UPDATE certificates SET replaced_by_order = NULL WHERE replaced_by_order IN ({PURGED_ORDERS})"
        ),
        format!(
            "UPDATE authorizations SET purge_candidate = 1 WHERE id IN \
             (SELECT authorization_id FROM order_authorizations WHERE order_id IN ({PURGED_ORDERS}))"
        ),
        format!("DELETE FROM order_authorizations WHERE order_id IN ({PURGED_ORDERS})"),
        format!("DELETE FROM orders WHERE id IN ({PURGED_ORDERS})"),
        format!("UPDATE authorizations SET purge_candidate = 0 WHERE id IN ({retained})"),
        format!("DELETE FROM challenges WHERE authorization_id IN ({purged})"),
        format!("DELETE FROM authorizations WHERE id IN ({purged})"),
    ]
});

/// Which statements of `PURGE` count the orders deleted, the authorizations kept, and the
/// authorizations deleted.
pub(crate) const PURGE_ORDERS_COUNTED: usize = 3;
pub(crate) const PURGE_RETAINED_COUNTED: usize = 4;
pub(crate) const PURGE_AUTHORIZATIONS_COUNTED: usize = 6;

/// Binds: certificate id, at.
pub(crate) const MARK_RENEWAL_ALERTED: &str = "UPDATE certificates SET renewal_alerted_at = $2 \
     WHERE id = $1 AND renewal_alerted_at IS NULL";

/// A certificate's window edge: the administrator's, else `centre ± margin` of its lifetime,
/// each rounded down as `Fraction::of` does, with the short fractions (`$3`…`$6`) under the
/// threshold `$2` and the long ones (`$7`…`$10`) above it.
fn window_edge(stored: &str, sign: char) -> String {
    const LIFETIME: &str = "(c.not_after - c.not_before)";
    format!(
        "COALESCE(c.{stored}, CASE WHEN {LIFETIME} < $2 \
         THEN c.not_before + {LIFETIME} * $3 / $4 {sign} {LIFETIME} * $5 / $6 \
         ELSE c.not_before + {LIFETIME} * $7 / $8 {sign} {LIFETIME} * $9 / $10 END)"
    )
}

fn window_start() -> String {
    window_edge("renewal_window_start", '-')
}

fn window_end() -> String {
    window_edge("renewal_window_end", '+')
}

/// Valid, unrevoked, and not renewed: no finished replacing order, and no newer certificate
/// of the same account for the same identifiers. `$1` is now.
const LIVE_AND_NOT_RENEWED: &str = "c.not_after > $1 AND c.revoked_at IS NULL \
     AND NOT EXISTS (SELECT 1 FROM orders r WHERE r.id = c.replaced_by_order \
         AND r.certificate_id IS NOT NULL) \
     AND NOT EXISTS (SELECT 1 FROM certificates n JOIN orders m ON m.id = n.order_id \
         WHERE n.account_id = c.account_id AND m.identifiers = o.identifiers \
         AND (n.created_at > c.created_at OR (n.created_at = c.created_at AND n.id > c.id)))";

/// Binds: the ten values of a `RenewalQuery` (see `bind_order`), then the limit.
pub(crate) static OVERDUE_RENEWALS: LazyLock<String> = LazyLock::new(|| {
    let end = window_end();
    format!(
        "SELECT c.id, c.serial, c.account_id, o.identifiers, o.profile, c.not_before, \
         c.not_after, {end} AS window_end \
         FROM certificates c JOIN orders o ON o.id = c.order_id \
         WHERE c.renewal_alerted_at IS NULL AND {LIVE_AND_NOT_RENEWED} AND {end} <= $1 \
         ORDER BY c.not_after, c.id LIMIT $11"
    )
});

/// Binds: the ten values of a `RenewalQuery`.
pub(crate) static RENEWAL_COUNTS: LazyLock<String> = LazyLock::new(|| {
    let (start, end) = (window_start(), window_end());
    format!(
        "SELECT o.profile, \
         SUM(CASE WHEN {end} <= $1 THEN 1 ELSE 0 END) AS overdue, \
         SUM(CASE WHEN {end} > $1 THEN 1 ELSE 0 END) AS due \
         FROM certificates c JOIN orders o ON o.id = c.order_id \
         WHERE {LIVE_AND_NOT_RENEWED} AND {start} <= $1 \
         GROUP BY o.profile"
    )
});

/// The ten values a renewal query binds, in parameter order.
pub(crate) fn bind_order(query: &super::RenewalQuery) -> [i64; 10] {
    [
        super::rows::secs(query.now),
        query.short_threshold_secs,
        query.short_centre.0,
        query.short_centre.1,
        query.short_margin.0,
        query.short_margin.1,
        query.long_centre.0,
        query.long_centre.1,
        query.long_margin.0,
        query.long_margin.1,
    ]
}
