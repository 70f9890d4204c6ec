-- Rate limits count the calls scheduled per number recently.
CREATE INDEX calls_to_created ON calls (to_number, created_at);
