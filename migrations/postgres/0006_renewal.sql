-- ACME Renewal Information (RFC 9773).

-- The order that replaces this certificate (RFC 9773 §5). Set together with the order's
-- insertion, in one transaction, by a guarded update (Store::insert_replacing_order): only if
-- no order replaces the certificate yet, or the one that did failed or expired unfinished.
-- No foreign key: the guard runs before the order row exists, and both commit together.
ALTER TABLE certificates ADD COLUMN replaced_by_order TEXT;
-- A renewal window moved by an administrator (`mayfly admin ari move`); both or neither.
-- When set, renewalInfo answers it instead of the computed window, on every replica.
ALTER TABLE certificates ADD COLUMN renewal_window_start BIGINT;
ALTER TABLE certificates ADD COLUMN renewal_window_end BIGINT;

-- The ARI certificate identifier newOrder named in `replaces`, echoed in the order.
ALTER TABLE orders ADD COLUMN replaces TEXT;
