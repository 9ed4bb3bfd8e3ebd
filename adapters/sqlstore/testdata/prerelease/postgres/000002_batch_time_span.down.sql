ALTER TABLE batches DROP COLUMN min_ts, DROP COLUMN max_ts;
