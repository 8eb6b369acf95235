-- Per-collector state: the IMAP position (UIDVALIDITY + highest committed UID) and the
-- outcome of the last runs, which `mailintake collectors status` reads while the daemon runs.
CREATE TABLE collector_state (
    collector TEXT PRIMARY KEY NOT NULL,
    uidvalidity BIGINT,
    last_uid BIGINT,
    last_run_at TIMESTAMP,
    last_success_at TIMESTAMP,
    last_error TEXT,
    last_report TEXT,
    next_run_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);
