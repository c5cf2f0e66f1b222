-- Revocation (RFC 8555 §7.6) and CRLs (RFC 5280 §5).

-- A certificate is revoked when revoked_at is set; the reason is an RFC 5280 §5.3.1 CRLReason.
-- Both are set once, by a guarded update (Store::revoke_certificate).
ALTER TABLE certificates ADD COLUMN revoked_at INTEGER;
ALTER TABLE certificates ADD COLUMN revocation_reason INTEGER;
-- The CRL lists revoked certificates until they expire: only those rows are indexed.
CREATE INDEX certificates_revoked_by_expiry ON certificates (not_after) WHERE revoked_at IS NOT NULL;

-- The last CRL number handed out per issuer (RFC 5280 §5.2.3: monotonically increasing).
-- One row per issuer, incremented in a single statement, so replicas never reuse a number.
CREATE TABLE crl_numbers (
    issuer TEXT PRIMARY KEY,
    last   INTEGER NOT NULL
) STRICT;
