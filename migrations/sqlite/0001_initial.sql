-- Mayfly schema, SQLite flavour. Times are whole Unix seconds (INTEGER); identifiers, contact
-- lists, JWKs and problem documents are JSON text. STRICT makes SQLite check column types.

-- Shared secrets replicas agree on (e.g. the nonce key); see Store::setting_or_insert.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- Redeemed nonces only: issuing a nonce writes nothing (ARCHITECTURE decision 2).
-- The primary key is what makes a nonce usable once across replicas.
CREATE TABLE nonces (
    nonce      TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX nonces_by_expiry ON nonces (expires_at);

CREATE TABLE accounts (
    id             TEXT PRIMARY KEY,
    key_thumbprint TEXT NOT NULL,
    jwk            TEXT NOT NULL,
    contact        TEXT NOT NULL,
    status         TEXT NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;
-- One account per key (RFC 8555 §7.3.1); also the lookup for `jwk`-signed requests.
CREATE UNIQUE INDEX accounts_by_thumbprint ON accounts (key_thumbprint);

CREATE TABLE authorizations (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    identifier  TEXT NOT NULL,
    expires     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    deactivated INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE challenges (
    id               TEXT PRIMARY KEY,
    authorization_id TEXT NOT NULL REFERENCES authorizations (id),
    -- Keeps the challenges in the order they were offered.
    position         INTEGER NOT NULL,
    kind             TEXT NOT NULL,
    token            TEXT NOT NULL,
    status           TEXT NOT NULL,
    validated_at     INTEGER,
    error            TEXT
) STRICT;
CREATE UNIQUE INDEX challenges_by_authorization ON challenges (authorization_id, position);

CREATE TABLE orders (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL REFERENCES accounts (id),
    identifiers      TEXT NOT NULL,
    not_before       INTEGER,
    not_after        INTEGER,
    expires          INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    processing_since INTEGER,
    certificate_id   TEXT REFERENCES certificates (id),
    error            TEXT
) STRICT;

-- Orders refer to authorizations through this table so that an authorization can be reused
-- by several orders; `position` keeps the order of the order's identifiers.
CREATE TABLE order_authorizations (
    order_id         TEXT NOT NULL REFERENCES orders (id),
    position         INTEGER NOT NULL,
    authorization_id TEXT NOT NULL REFERENCES authorizations (id),
    PRIMARY KEY (order_id, position)
) STRICT;
CREATE INDEX order_authorizations_by_authorization ON order_authorizations (authorization_id);

CREATE TABLE certificates (
    id         TEXT PRIMARY KEY,
    order_id   TEXT NOT NULL REFERENCES orders (id),
    account_id TEXT NOT NULL REFERENCES accounts (id),
    serial     TEXT NOT NULL,
    chain_pem  TEXT NOT NULL,
    not_before INTEGER NOT NULL,
    not_after  INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
-- Serials are unique per CA (RFC 5280 §4.1.2.2); revocation looks certificates up by serial.
CREATE UNIQUE INDEX certificates_by_serial ON certificates (serial);
CREATE INDEX certificates_by_order ON certificates (order_id);
