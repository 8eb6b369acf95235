-- A dispatcher that takes a queued notification to send it holds it until this time, so a
-- second dispatcher (the daemon and a CLI command's send-before-exit, or
-- `notifications send`) never sends it at the same time; a dispatcher that crashed mid-send
-- lets it go when the claim runs out. NULL: nobody holds it.
ALTER TABLE notifications ADD COLUMN claimed_until TIMESTAMP;
