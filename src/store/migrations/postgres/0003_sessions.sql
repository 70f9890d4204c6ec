-- The server secret and the sign-in sessions, as on SQLite (0006_sessions). Every instance
-- sharing the database reads the same secret and the same sessions.
CREATE TABLE server_secret (
    id     integer PRIMARY KEY CHECK (id = 1),
    secret bytea NOT NULL
);

CREATE TABLE sessions (
    key        text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);
