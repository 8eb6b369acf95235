DROP INDEX records_updated;
DROP TRIGGER record_events_touch_record;
