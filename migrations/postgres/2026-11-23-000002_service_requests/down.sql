ALTER TABLE records DROP COLUMN result;
DROP INDEX records_request_type;
DROP INDEX records_number;
ALTER TABLE records DROP COLUMN service;
ALTER TABLE records DROP COLUMN request_type;
ALTER TABLE records DROP COLUMN number;
