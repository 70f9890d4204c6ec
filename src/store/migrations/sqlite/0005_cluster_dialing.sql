-- Dials are paced by the store: every dial sent (first dials and resends) is logged here, and a
-- claim counts the log of the last window in the same transaction.
CREATE TABLE dial_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at  INTEGER NOT NULL
);
CREATE INDEX dial_log_at ON dial_log (at);

-- When the dial was first sent under the call's command id: a resend after a takeover keeps that
-- id, so it may only go while Telnyx still remembers it.
ALTER TABLE calls ADD COLUMN dial_started_at INTEGER;
UPDATE calls SET dial_started_at = updated_at WHERE status = 'dialing';

-- The calls in progress, counted against the limit of calls at once.
CREATE INDEX calls_in_progress ON calls (status) WHERE status IN ('dialing', 'ringing', 'answered', 'speaking');
