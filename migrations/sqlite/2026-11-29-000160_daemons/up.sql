-- The daemons sharing this database, each announcing itself every third of a lease length
-- (work sharing): a daemon holds at most its share of the collectors, the configured ones
-- divided by the daemons whose `seen_until` has not passed, so the work spreads over them.
-- Same clock and `holder` ids as collector_leases.
CREATE TABLE daemons (
    holder TEXT PRIMARY KEY NOT NULL,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    seen_until TIMESTAMP NOT NULL
);
