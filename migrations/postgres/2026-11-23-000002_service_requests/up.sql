-- Service requests (consult / fault / complaint / pending triage): a unique human-readable
-- number, the type for the triage list, and the other fields as JSON.
ALTER TABLE records ADD COLUMN number TEXT;
ALTER TABLE records ADD COLUMN request_type TEXT;
ALTER TABLE records ADD COLUMN service TEXT;
CREATE UNIQUE INDEX records_number ON records (number);
CREATE INDEX records_request_type ON records (request_type);
-- The solution text of a resolved record (seed 001: shown to the customer in some statuses).
ALTER TABLE records ADD COLUMN result TEXT;
