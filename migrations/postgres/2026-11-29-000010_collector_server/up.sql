-- What a collector's server made it do (issue 13), for `collectors status`: the mode in use
-- (`idle`, `poll`, or `schedule (no IDLE on server)`), the fallbacks its extensions forced
-- (a JSON array of sentences), and the counts of the last run when that run failed part-way.
ALTER TABLE collector_state ADD COLUMN mode TEXT;
ALTER TABLE collector_state ADD COLUMN fallbacks TEXT;
ALTER TABLE collector_state ADD COLUMN failed_report TEXT;
