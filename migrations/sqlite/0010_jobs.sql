-- Periodic jobs (purges, renewal alerts) and which replica runs them.

-- A job runs on the replica holding its lease, until expires_at (Store::acquire_lease): the
-- conditional upsert that takes or renews it is what makes one replica win.
CREATE TABLE job_leases (
    job        TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

-- When the alert that a certificate's renewal window passed without a renewal was
-- delivered; set once, by a guarded update, so a certificate is reported once.
ALTER TABLE certificates ADD COLUMN renewal_alerted_at INTEGER;
-- Renewal alerts and their gauges look at the certificates that are still valid only.
CREATE INDEX certificates_by_expiry ON certificates (not_after);
-- "Was this certificate renewed?" asks for a newer certificate of the same account.
CREATE INDEX certificates_by_account ON certificates (account_id, created_at);
-- Purges look for orders and authorizations long expired.
CREATE INDEX orders_by_expiry ON orders (expires) WHERE certificate_id IS NULL;
CREATE INDEX authorizations_by_expiry ON authorizations (expires);
