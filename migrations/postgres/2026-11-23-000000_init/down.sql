DROP TABLE ledger;
DROP TABLE quarantine;
DROP TABLE record_events;
DROP TABLE tech_cards;
DROP TABLE record_lines;
DROP TABLE records;
DROP TABLE contacts;
DROP TABLE counterparties;
