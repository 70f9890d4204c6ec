-- Times are Unix milliseconds (UTC): cheap to compare and index.
CREATE TABLE calls (
    id              TEXT PRIMARY KEY,
    to_number       TEXT NOT NULL,
    due_at          INTEGER NOT NULL,
    timezone        TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempt         INTEGER NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_until     INTEGER,
    call_control_id TEXT,
    joke            TEXT,
    last_error      TEXT,
    note            TEXT,
    idempotency_key TEXT UNIQUE,
    request_hash    TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX calls_scheduled_due ON calls (due_at) WHERE status = 'scheduled';
CREATE INDEX calls_dialing_lease ON calls (lease_until) WHERE status = 'dialing';
CREATE INDEX calls_created ON calls (created_at DESC);
CREATE INDEX calls_status_created ON calls (status, created_at DESC);
CREATE INDEX calls_call_control_id ON calls (call_control_id);
CREATE INDEX calls_to_joke ON calls (to_number, updated_at DESC) WHERE joke IS NOT NULL;

CREATE TABLE call_events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL REFERENCES calls (id),
    at      INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    detail  TEXT
);
CREATE INDEX call_events_call ON call_events (call_id, seq);

-- Every verified webhook, kept raw; `call_key` groups the events of one call so they are
-- applied one at a time in arrival (`seq`) order.
CREATE TABLE inbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL UNIQUE,
    call_key     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    body         BLOB NOT NULL,
    received_at  INTEGER NOT NULL,
    processed_at INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT
);
CREATE INDEX inbox_pending ON inbox (call_key, seq) WHERE processed_at IS NULL;
