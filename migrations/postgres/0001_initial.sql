-- Mayfly schema, PostgreSQL flavour. Times are whole Unix seconds (BIGINT); identifiers, contact
-- lists, JWKs and problem documents are JSON text.
--
-- Every unique constraint is named "table.column", the form SQLite uses in its error message,
-- so that StoreError::Conflict names the key the same way on both backends.

-- Shared secrets replicas agree on (e.g. the nonce key); see Store::setting_or_insert.
CREATE TABLE settings (
    key   TEXT CONSTRAINT "settings.key" PRIMARY KEY,
    value TEXT NOT NULL
);

-- Redeemed nonces only: issuing a nonce writes nothing (ARCHITECTURE decision 2).
-- The primary key is what makes a nonce usable once across replicas.
CREATE TABLE nonces (
    nonce      TEXT CONSTRAINT "nonces.nonce" PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX nonces_by_expiry ON nonces (expires_at);

CREATE TABLE accounts (
    id             TEXT CONSTRAINT "accounts.id" PRIMARY KEY,
    -- One account per key (RFC 8555 §7.3.1); also the lookup for `jwk`-signed requests.
    key_thumbprint TEXT NOT NULL CONSTRAINT "accounts.key_thumbprint" UNIQUE,
    jwk            TEXT NOT NULL,
    contact        TEXT NOT NULL,
    status         TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);

CREATE TABLE authorizations (
    id          TEXT CONSTRAINT "authorizations.id" PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    identifier  TEXT NOT NULL,
    expires     BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    deactivated BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE challenges (
    id               TEXT CONSTRAINT "challenges.id" PRIMARY KEY,
    authorization_id TEXT NOT NULL REFERENCES authorizations (id),
    -- Keeps the challenges in the order they were offered.
    position         INTEGER NOT NULL,
    kind             TEXT NOT NULL,
    token            TEXT NOT NULL,
    status           TEXT NOT NULL,
    validated_at     BIGINT,
    error            TEXT,
    CONSTRAINT "challenges.authorization_id, challenges.position"
        UNIQUE (authorization_id, position)
);

CREATE TABLE orders (
    id               TEXT CONSTRAINT "orders.id" PRIMARY KEY,
    account_id       TEXT NOT NULL REFERENCES accounts (id),
    identifiers      TEXT NOT NULL,
    not_before       BIGINT,
    not_after        BIGINT,
    expires          BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    processing_since BIGINT,
    certificate_id   TEXT,
    error            TEXT
);

-- Orders refer to authorizations through this table so that an authorization can be reused
-- by several orders; `position` keeps the order of the order's identifiers.
CREATE TABLE order_authorizations (
    order_id         TEXT NOT NULL REFERENCES orders (id),
    position         INTEGER NOT NULL,
    authorization_id TEXT NOT NULL REFERENCES authorizations (id),
    CONSTRAINT "order_authorizations.order_id, order_authorizations.position"
        PRIMARY KEY (order_id, position)
);
CREATE INDEX order_authorizations_by_authorization ON order_authorizations (authorization_id);

CREATE TABLE certificates (
    id         TEXT CONSTRAINT "certificates.id" PRIMARY KEY,
    order_id   TEXT NOT NULL REFERENCES orders (id),
    account_id TEXT NOT NULL REFERENCES accounts (id),
    -- Serials are unique per CA (RFC 5280 §4.1.2.2); revocation looks certificates up by serial.
    serial     TEXT NOT NULL CONSTRAINT "certificates.serial" UNIQUE,
    chain_pem  TEXT NOT NULL,
    not_before BIGINT NOT NULL,
    not_after  BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX certificates_by_order ON certificates (order_id);

-- Added last because orders and certificates refer to each other.
ALTER TABLE orders ADD FOREIGN KEY (certificate_id) REFERENCES certificates (id);
