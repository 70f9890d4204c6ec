-- The server secret keys the page's anti-forgery tokens when DIALAJOKE_SECRET is not set: made
-- once, at the first start, and kept, so tokens outlast restarts. One row only.
CREATE TABLE server_secret (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    secret BLOB NOT NULL
);

-- Sign-in sessions, by a keyed hash of the session cookie (a copy of this table lets no one
-- in). A session ends when it runs out or is signed out of: its row is gone.
CREATE TABLE sessions (
    key        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL -- Unix milliseconds
);
CREATE INDEX sessions_expires ON sessions (expires_at);
