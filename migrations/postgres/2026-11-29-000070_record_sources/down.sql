DROP TABLE record_sources;
