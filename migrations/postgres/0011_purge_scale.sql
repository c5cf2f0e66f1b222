-- Which authorizations the purge looks at (issue 9, scale). It used to scan every expired
-- authorization for one that no order uses; those of issued orders, which are kept, are most
-- of a large database and were scanned again on every run. Now an authorization is a
-- candidate from its creation (a newAuthz one may never get an order) until the purge finds
-- it expired and still in use, and again when an order that used it is purged.
ALTER TABLE authorizations ADD COLUMN purge_candidate SMALLINT NOT NULL DEFAULT 1;
UPDATE authorizations SET purge_candidate = 0
    WHERE EXISTS (SELECT 1 FROM order_authorizations oa WHERE oa.authorization_id = authorizations.id);
DROP INDEX authorizations_by_expiry;
CREATE INDEX authorizations_purgeable ON authorizations (expires) WHERE purge_candidate = 1;
-- Each purge batch releases the certificates its replacing orders replaced (RFC 9773 §5);
-- without an index that was a scan of every certificate, on every run.
CREATE INDEX certificates_by_replacing_order ON certificates (replaced_by_order)
    WHERE replaced_by_order IS NOT NULL;
