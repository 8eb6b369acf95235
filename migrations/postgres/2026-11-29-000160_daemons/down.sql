DROP TABLE daemons;
