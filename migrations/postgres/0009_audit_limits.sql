-- Audit log and rate limits (issue 7).

-- Append-only: the trigger below refuses every UPDATE, DELETE and TRUNCATE, so a row, once
-- committed, stays as written. There is no retention purge; removing old rows is a deliberate
-- operation outside Mayfly (drop the triggers, delete, recreate them).
CREATE TABLE audit_log (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         BIGINT NOT NULL,
    -- e.g. certificate.issued, account.created, auth.bad_signature (AuditKind).
    kind       TEXT NOT NULL,
    -- Who: "account:<id>", "provisioner:<name>", "admin:<certificate subject>", "ip:<address>".
    actor      TEXT NOT NULL,
    -- What: "serial:<hex>", "order:<id>", "account:<id>", "identifier:<value>"; '' if none.
    object     TEXT NOT NULL,
    -- success | failure
    outcome    TEXT NOT NULL,
    -- A JSON object with the event's facts (text, as every JSON column here).
    detail     TEXT NOT NULL,
    request_id TEXT
);
CREATE INDEX audit_log_by_time ON audit_log (at);
CREATE INDEX audit_log_by_kind ON audit_log (kind, id);
CREATE INDEX audit_log_by_actor ON audit_log (actor, id);
CREATE INDEX audit_log_by_object ON audit_log (object, id);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- One row per counted event of a rate-limit bucket (a hash of e.g. "new_orders:<account>");
-- a limit counts the rows of the last hour. Store::prune_rate_limits forgets older rows.
-- A check-and-count takes a transaction-level advisory lock on the bucket, so two replicas
-- cannot both take the last slot.
CREATE TABLE rate_limit_events (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bucket TEXT NOT NULL,
    at     BIGINT NOT NULL
);
CREATE INDEX rate_limit_events_by_bucket ON rate_limit_events (bucket, at);
CREATE INDEX rate_limit_events_by_time ON rate_limit_events (at);
