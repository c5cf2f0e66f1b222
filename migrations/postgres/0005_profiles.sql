-- Certificate profiles (draft-ietf-acme-profiles): the profile an order was made under, which
-- finalization applies. NULL for orders made before profiles existed; they get the configured
-- default profile. The requested notBefore/notAfter already live in orders.not_before/not_after.
ALTER TABLE orders ADD COLUMN profile TEXT;
