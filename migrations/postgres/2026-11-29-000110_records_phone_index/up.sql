-- Issue 14: an index every record insert pays for must serve a query. records.phone_digits is
-- only searched by its end (`LIKE '%digits'`, the phone filter of `records list` and the
-- review page), which no index can serve: the scan it does is the same without it.
DROP INDEX records_phone_digits;
