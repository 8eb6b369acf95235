DROP INDEX records_updated;
DROP TRIGGER record_events_touch_record ON record_events;
DROP FUNCTION record_events_touch_record();
