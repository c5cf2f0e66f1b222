-- Provisioners (issue 6): single-use tokens, the provisioner behind each account and EAB key,
-- and the token identity that validated a tkauth-01 challenge.

-- One row per token redeemed (a JWK one-time token, an OIDC ID token): the primary key is
-- what makes a token usable once across replicas (Store::use_token), as for nonces. The row is
-- kept until the token expires; after that the token is refused for its `exp` anyway.
CREATE TABLE used_tokens (
    provisioner TEXT NOT NULL,
    token_id    TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (provisioner, token_id)
) STRICT;
CREATE INDEX used_tokens_by_expiry ON used_tokens (expires_at);

-- The ACME provisioner whose directory created the account; its policy applies to the
-- account's orders. Accounts made before provisioners existed belong to the default one.
ALTER TABLE accounts ADD COLUMN provisioner TEXT NOT NULL DEFAULT 'acme';

-- The provisioner whose policy accounts bound with this key get; NULL: the directory's own.
ALTER TABLE eab_keys ADD COLUMN provisioner TEXT;

-- The verified token identity (JSON) that validated a tkauth-01 challenge; NULL otherwise.
ALTER TABLE challenges ADD COLUMN token_identity TEXT;
