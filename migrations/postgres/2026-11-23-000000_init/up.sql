-- Core schema, PostgreSQL twin of migrations/sqlite/2026-11-23-000000_init: the same tables,
-- columns, nullability and constraints (tests/integration/postgres.rs compares the two).
-- SQLite's `INTEGER PRIMARY KEY` is a 64-bit rowid: BIGSERIAL here; BLOB is BYTEA.

CREATE TABLE counterparties (
    id BIGSERIAL PRIMARY KEY,
    inn TEXT NOT NULL UNIQUE,
    name TEXT,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE contacts (
    id BIGSERIAL PRIMARY KEY,
    phone_digits TEXT NOT NULL UNIQUE,
    name TEXT,
    email TEXT,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE records (
    id BIGSERIAL PRIMARY KEY,
    queue TEXT NOT NULL,
    collector TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    title TEXT,
    record_date TIMESTAMP,
    description TEXT,
    inn TEXT,
    inn_valid BOOLEAN NOT NULL,
    phone TEXT,
    phone_digits TEXT,
    email TEXT,
    contact_name TEXT,
    counterparty_id BIGINT REFERENCES counterparties (id),
    contact_id BIGINT REFERENCES contacts (id),
    layout_files TEXT NOT NULL,
    message_id TEXT,
    subject TEXT,
    order_ref TEXT,
    attachment_name TEXT,
    charset TEXT NOT NULL,
    warnings TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX records_queue_status ON records (queue, status);
CREATE INDEX records_phone_digits ON records (phone_digits);
CREATE INDEX records_created_at ON records (created_at);

CREATE TABLE record_lines (
    id BIGSERIAL PRIMARY KEY,
    record_id BIGINT NOT NULL REFERENCES records (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    item TEXT,
    machine_code TEXT,
    resolution TEXT,
    material TEXT,
    material_code TEXT,
    width DOUBLE PRECISION,
    height DOUBLE PRECISION,
    quantity DOUBLE PRECISION,
    price DOUBLE PRECISION,
    amount DOUBLE PRECISION,
    is_service BOOLEAN NOT NULL,
    -- ДополнительныеРаботы of this line, a JSON list of {kind, quantity, description}:
    -- small, always read with their line, never queried on their own; TEXT as on SQLite
    -- (not JSONB), so both backends read back the same string.
    extra_work TEXT NOT NULL,
    UNIQUE (record_id, position)
);

-- "одна строка — одна техкарта": one tech card per non-service goods line.
CREATE TABLE tech_cards (
    id BIGSERIAL PRIMARY KEY,
    record_id BIGINT NOT NULL REFERENCES records (id) ON DELETE CASCADE,
    line_position INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (record_id, line_position)
);

CREATE TABLE record_events (
    id BIGSERIAL PRIMARY KEY,
    record_id BIGINT NOT NULL REFERENCES records (id) ON DELETE CASCADE,
    at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    event TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX record_events_record ON record_events (record_id);

CREATE TABLE quarantine (
    id BIGSERIAL PRIMARY KEY,
    collector TEXT NOT NULL,
    source_key TEXT NOT NULL,
    message_id TEXT,
    subject TEXT,
    fingerprint TEXT NOT NULL,
    reason TEXT NOT NULL,
    raw BYTEA NOT NULL,
    status TEXT NOT NULL,
    record_id BIGINT REFERENCES records (id),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- One row per message position seen; a second copy of the same content points at the
-- first one's record or quarantine entry. The UNIQUE constraint is what keeps two daemons
-- that fetch the same mailbox from storing a message twice.
CREATE TABLE ledger (
    id BIGSERIAL PRIMARY KEY,
    collector TEXT NOT NULL,
    source_key TEXT NOT NULL,
    message_id TEXT,
    fingerprint TEXT NOT NULL,
    outcome TEXT NOT NULL,
    record_id BIGINT REFERENCES records (id),
    quarantine_id BIGINT REFERENCES quarantine (id),
    created_at TIMESTAMP NOT NULL,
    UNIQUE (collector, source_key)
);
CREATE INDEX ledger_fingerprint ON ledger (fingerprint);
CREATE INDEX ledger_quarantine ON ledger (quarantine_id);
