-- The JSON API's polling (issue 11): `GET /api/v1/records?updated-since=T` finds every record
-- whose history grew after T, so `records.updated_at` moves with every history event (a
-- status change, a triage, a notification queued, sent or failed, ...), whichever code path
-- wrote it. A trigger keeps that true for writers added later too. The `created` event is
-- left out: it is written with the record, whose updated_at is its creation time already.
-- PostgreSQL twin of migrations/sqlite/2026-11-29-000120_record_updated: the same rule, as a
-- trigger function (PostgreSQL's triggers run functions, not inline statements).
CREATE FUNCTION record_events_touch_record() RETURNS trigger AS $$
BEGIN
    UPDATE records SET updated_at = NEW.at WHERE id = NEW.record_id AND updated_at < NEW.at;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER record_events_touch_record
AFTER INSERT ON record_events
FOR EACH ROW
WHEN (NEW.event <> 'created')
EXECUTE FUNCTION record_events_touch_record();

-- Records updated before this migration: their latest history event.
UPDATE records
SET updated_at = (SELECT MAX(e.at) FROM record_events e WHERE e.record_id = records.id)
WHERE updated_at < (SELECT MAX(e.at) FROM record_events e WHERE e.record_id = records.id);

-- Keyset paging in (updated_at, id) order reads the index, not the whole table.
CREATE INDEX records_updated ON records (updated_at, id);
