-- The claims engine looks for pending guarantees whose start has come and active ones
-- whose end has passed. One index on (status, start_date, end_date) served only the
-- first: for the second it walked every active guarantee. One index per date instead.
DROP INDEX guarantees_status_idx;
CREATE INDEX guarantees_starting_idx ON guarantees (status, start_date);
CREATE INDEX guarantees_ending_idx ON guarantees (status, end_date);
