-- Authorization reuse (Store::valid_authorization): an order or newAuthz looks up the
-- account's unexpired authorization for one identifier; without this index that is a scan of
-- every authorization ever made.
CREATE INDEX authorizations_by_account_identifier
    ON authorizations (account_id, identifier, expires);
