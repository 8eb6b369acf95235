-- The review page's users (`mailintake users add`), the queues a manager may see (seed 004's
-- agent groups; admins see every queue) and their login sessions. A session is found by the
-- SHA-256 of its cookie, so a copy of the database does not hold usable cookies; `csrf` is the
-- token every form of that session carries.
CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE user_queues (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    queue TEXT NOT NULL,
    PRIMARY KEY (user_id, queue)
);
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
