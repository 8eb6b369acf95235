-- When a collector's current run of failures began (NULL while its last pass succeeded), for
-- `/healthz`: a collector failing longer than its `stale-after` makes the daemon unhealthy.
-- A collector failing at upgrade time counts from its last failed run: it may have failed
-- longer, but the health check must not raise an alarm it cannot back.
ALTER TABLE collector_state ADD COLUMN failing_since TIMESTAMP;
UPDATE collector_state SET failing_since = last_run_at WHERE last_error IS NOT NULL;
