-- The page's outcome chart counts the calls that ended in the last days, by when they ended.
CREATE INDEX calls_updated ON calls (updated_at);
