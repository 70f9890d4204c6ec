-- Limits count calls by when they ring: the calls near a moment, to one number and in all.
-- Nothing counts calls by when they were created any more.
DROP INDEX calls_to_created;
CREATE INDEX calls_to_due ON calls (to_number, due_at);
CREATE INDEX calls_due ON calls (due_at);
