-- Recurring rules, as on SQLite (0004_rules_and_retries). Each occurrence becomes an ordinary
-- call; `cursor_at` says up to which instant the occurrences are dealt with and only moves by
-- compare-and-set, so the instances sharing the database never race on it.
CREATE TABLE schedules (
    id         uuid PRIMARY KEY,
    to_number  text NOT NULL,
    timezone   text NOT NULL,
    recurrence text NOT NULL, -- 'daily 10:00', 'weekly sun 10:00' or 'cron 0 10 * * SUN'
    catch_up   text NOT NULL, -- 'skip' or 'once 60' (minutes)
    status     text NOT NULL, -- 'active' or 'paused'
    cursor_at  timestamptz NOT NULL,
    note       text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- A call made for a rule's occurrence carries both; the pair is unique, so an occurrence rings
-- at most once whichever instance materialises it and however often. Retries carry the rule but
-- no occurrence.
ALTER TABLE calls ADD COLUMN rule_id uuid;
ALTER TABLE calls ADD COLUMN occurrence_at timestamptz;
CREATE UNIQUE INDEX calls_rule_occurrence ON calls (rule_id, occurrence_at);
CREATE INDEX calls_rule_waiting ON calls (rule_id, due_at) WHERE status = 'scheduled' AND occurrence_at IS NOT NULL;

-- A retry points at the first call of its chain and says which retry it is; the pair is unique.
ALTER TABLE calls ADD COLUMN retry_of uuid;
ALTER TABLE calls ADD COLUMN retry integer NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX calls_retry ON calls (retry_of, retry);
