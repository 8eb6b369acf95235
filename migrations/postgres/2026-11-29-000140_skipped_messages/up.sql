-- Messages a collector read and found not its own (no keyword in the decoded subject, no JSON
-- attachment, an auto-reply, a bounce, our own notification): remembered by position so the
-- next pass does not fetch them again. IMAP lists an unseen message whose subject carries the
-- keyword in any case on every pass, and the collector leaves such mail untouched, so without
-- this a busy shared mailbox is read again and again. `rules` fingerprints what decided the
-- skip (the collector's decode rules and the program's version): a skip decided under other
-- rules is forgotten, and the message looked at again. Entries whose position the mailbox no
-- longer lists (read by a person, deleted, or a new UIDVALIDITY) are forgotten by the pass.
CREATE TABLE skipped_messages (
    collector TEXT NOT NULL,
    -- The ledger's position key: `UIDVALIDITY:UID` for IMAP, the unique name for a Maildir.
    source_key TEXT NOT NULL,
    rules TEXT NOT NULL,
    skipped_at TIMESTAMP NOT NULL,
    PRIMARY KEY (collector, source_key)
);
