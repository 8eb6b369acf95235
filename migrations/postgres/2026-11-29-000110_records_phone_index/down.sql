CREATE INDEX records_phone_digits ON records (phone_digits);
