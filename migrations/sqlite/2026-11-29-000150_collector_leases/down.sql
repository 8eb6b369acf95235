DROP TABLE collector_leases;
