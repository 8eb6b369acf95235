DROP TABLE skipped_messages;
