-- Which daemon runs each collector now (work sharing: at most one daemon at a time). A row
-- whose `expires_at` has passed is free: its holder died or stopped renewing, and any daemon
-- may take it over. Times are the application's UTC clock (hosts keep NTP time; skew must
-- stay well under a lease). `holder` is a random id a daemon draws at start, so a restarted
-- daemon with the same pid is another holder.
CREATE TABLE collector_leases (
    collector TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    acquired_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
