-- Bearer tokens for other systems (issue 11): a website posting its forms to one collector
-- (`intake`), a helpdesk reading (`read`) or acting on (`write`) records, a calendar client
-- subscribed to one queue (`calendar`). Only the SHA-256 of a token is kept, so a copy of the
-- database holds no usable token. A revoked token stays for the record, and its name may be
-- given again.
CREATE TABLE api_tokens (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    target TEXT,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;
