-- The notification outbox (issue: notifications over SMTP). A rule that fires writes a row
-- here in the same transaction as the record or change that triggered it, with its subject
-- and body already rendered; the dispatcher sends queued rows and marks them sent or failed.
CREATE TABLE notifications (
    id BIGSERIAL PRIMARY KEY,
    record_id BIGINT NOT NULL REFERENCES records (id) ON DELETE CASCADE,
    -- The [[notify]] rule's name.
    rule TEXT NOT NULL,
    -- email | sms
    channel TEXT NOT NULL,
    -- JSON array of the resolved addresses (for sms: the gateway addresses made from the phones).
    recipients TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    -- queued | sent | failed
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    -- The SMTP server's last reply (or the failure it gave).
    server_reply TEXT,
    -- Not sent before this time (backoff after a failed attempt).
    next_attempt_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
CREATE INDEX notifications_due ON notifications (status, next_attempt_at);
CREATE INDEX notifications_record ON notifications (record_id);
