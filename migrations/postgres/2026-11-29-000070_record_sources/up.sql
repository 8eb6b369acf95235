-- The message a record was made from, byte for byte (the review page's `.eml` download).
-- A table of its own so that listing and reading records never loads the blobs. Records
-- created before this migration have no row here.
CREATE TABLE record_sources (
    record_id BIGINT PRIMARY KEY NOT NULL REFERENCES records (id) ON DELETE CASCADE,
    raw BYTEA NOT NULL
);
