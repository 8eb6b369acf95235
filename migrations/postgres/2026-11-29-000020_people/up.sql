-- The people directory (seed 000: the branch's general manager comes from HR's employee
-- records, post 总经理, status enabled): `directory:ROLE` recipients of [[notify]] rules are
-- the enabled people of that role in the record's branch.
CREATE TABLE people (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    branch TEXT NOT NULL,
    role TEXT NOT NULL,
    email TEXT,
    phone TEXT,
    enabled BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX people_role_branch ON people (role, branch);
