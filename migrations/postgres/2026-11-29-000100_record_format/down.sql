ALTER TABLE records DROP COLUMN format;
