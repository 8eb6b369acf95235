ALTER TABLE collector_state DROP COLUMN failing_since;
