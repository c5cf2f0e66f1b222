-- Audit log and rate limits (issue 7).

-- Append-only: the triggers below refuse every UPDATE and DELETE, so a row, once committed,
-- stays as written. There is no retention purge; removing old rows is a deliberate operation
-- outside Mayfly (drop the triggers, delete, recreate them).
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    -- e.g. certificate.issued, account.created, auth.bad_signature (AuditKind).
    kind       TEXT NOT NULL,
    -- Who: "account:<id>", "provisioner:<name>", "admin:<certificate subject>", "ip:<address>".
    actor      TEXT NOT NULL,
    -- What: "serial:<hex>", "order:<id>", "account:<id>", "identifier:<value>"; '' if none.
    object     TEXT NOT NULL,
    -- success | failure
    outcome    TEXT NOT NULL,
    -- A JSON object with the event's facts.
    detail     TEXT NOT NULL,
    request_id TEXT
) STRICT;
CREATE INDEX audit_log_by_time ON audit_log (at);
CREATE INDEX audit_log_by_kind ON audit_log (kind, id);
CREATE INDEX audit_log_by_actor ON audit_log (actor, id);
CREATE INDEX audit_log_by_object ON audit_log (object, id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- One row per counted event of a rate-limit bucket (a hash of e.g. "new_orders:<account>");
-- a limit counts the rows of the last hour. Store::prune_rate_limits forgets older rows.
CREATE TABLE rate_limit_events (
    id     INTEGER PRIMARY KEY,
    bucket TEXT NOT NULL,
    at     INTEGER NOT NULL
) STRICT;
CREATE INDEX rate_limit_events_by_bucket ON rate_limit_events (bucket, at);
CREATE INDEX rate_limit_events_by_time ON rate_limit_events (at);
