-- HTTP intake (issue 11): every request a collector's `POST /api/v1/intake/{collector}`
-- accepted, i.e. made a record or a quarantine entry from. It is the HTTP side's ledger:
-- a request whose Idempotency-Key this collector has seen, or one without a key whose body
-- (byte for byte, SHA-256) it has accepted before, is a duplicate and gets the first one's
-- answer. The unique constraints below are what enforces that, inside the record's
-- transaction, so several daemons on one database (PostgreSQL, later) cannot both store a
-- request either; NULL keys are distinct in SQLite and PostgreSQL alike.
CREATE TABLE http_intake (
    id BIGSERIAL PRIMARY KEY,
    collector TEXT NOT NULL,
    -- The name of the token that posted it (tokens are revoked, never deleted).
    token TEXT NOT NULL,
    idempotency_key TEXT,
    body_sha256 TEXT NOT NULL,
    -- The Content-Type header as sent (its charset decodes the body again on a retry).
    content_type TEXT,
    record_id BIGINT REFERENCES records (id),
    quarantine_id BIGINT REFERENCES quarantine (id),
    created_at TIMESTAMP NOT NULL,
    UNIQUE (collector, idempotency_key),
    CHECK (record_id IS NOT NULL OR quarantine_id IS NOT NULL)
);
CREATE INDEX http_intake_quarantine ON http_intake (quarantine_id);

-- The first accepted request of each body, per collector: a request without a key claims
-- its body here (a second claim is the duplicate), one with a key claims it only if nobody
-- has (so a later keyless copy of that body is its duplicate).
CREATE TABLE http_intake_bodies (
    collector TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    intake_id BIGINT NOT NULL REFERENCES http_intake (id),
    PRIMARY KEY (collector, body_sha256)
);
