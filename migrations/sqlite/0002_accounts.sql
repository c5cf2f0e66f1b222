-- Accounts, issue 3: External Account Binding keys (RFC 8555 §7.3.4) and the key that bound
-- each account.

-- HMAC keys an operator hands out (`mayfly admin eab add`); `id` is the EAB `kid`.
CREATE TABLE eab_keys (
    id         TEXT PRIMARY KEY,
    -- The HMAC key, base64url without padding. Shown to the operator once, at creation.
    hmac_key   TEXT NOT NULL,
    -- Free text for the operator (and, later, for policy: the server_group validator).
    label      TEXT NOT NULL,
    -- A reusable key binds any number of accounts; otherwise it binds one.
    reusable   INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    -- How many accounts this key bound; the guard on binding reads it.
    use_count  INTEGER NOT NULL DEFAULT 0
) STRICT;

-- The EAB key that bound the account, if any.
ALTER TABLE accounts ADD COLUMN eab_key_id TEXT REFERENCES eab_keys (id);
CREATE INDEX accounts_by_eab_key ON accounts (eab_key_id);

-- The orders list (RFC 8555 §7.1.2.1) pages through an account's orders by (created_at, id).
CREATE INDEX orders_by_account ON orders (account_id, created_at, id);
