ALTER TABLE collector_state DROP COLUMN failed_report;
ALTER TABLE collector_state DROP COLUMN fallbacks;
ALTER TABLE collector_state DROP COLUMN mode;
