-- Recurring rules. Each occurrence becomes an ordinary call; `cursor_at` says up to which instant
-- the occurrences are dealt with and only moves by compare-and-set, so instances never race.
CREATE TABLE schedules (
    id         TEXT PRIMARY KEY,
    to_number  TEXT NOT NULL,
    timezone   TEXT NOT NULL,
    recurrence TEXT NOT NULL, -- 'daily 10:00', 'weekly sun 10:00' or 'cron 0 10 * * SUN'
    catch_up   TEXT NOT NULL, -- 'skip' or 'once 60' (minutes)
    status     TEXT NOT NULL, -- 'active' or 'paused'
    cursor_at  INTEGER NOT NULL,
    note       TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- A call made for a rule's occurrence carries both; the pair is unique, so an occurrence rings
-- at most once whoever materialises it and however often. Retries carry the rule but no occurrence.
ALTER TABLE calls ADD COLUMN rule_id TEXT;
ALTER TABLE calls ADD COLUMN occurrence_at INTEGER;
CREATE UNIQUE INDEX calls_rule_occurrence ON calls (rule_id, occurrence_at);
CREATE INDEX calls_rule_waiting ON calls (rule_id, due_at) WHERE status = 'scheduled' AND occurrence_at IS NOT NULL;

-- A retry points at the first call of its chain and says which retry it is; the pair is unique.
ALTER TABLE calls ADD COLUMN retry_of TEXT;
ALTER TABLE calls ADD COLUMN retry INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX calls_retry ON calls (retry_of, retry);
