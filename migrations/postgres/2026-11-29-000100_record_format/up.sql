-- The format that mapped each record: a collector with several formats (`formats = [...]`)
-- fills one queue or more from one mailbox, and `[[notify]] when = { format = ... }` must see
-- the form the website sent, not the collector's list. Records stored before this
-- migration have none; the notification rules then use their collector's format, as before.
ALTER TABLE records ADD COLUMN format TEXT;
