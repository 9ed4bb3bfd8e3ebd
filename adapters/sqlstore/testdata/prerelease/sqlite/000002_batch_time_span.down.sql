ALTER TABLE batches DROP COLUMN min_ts;
ALTER TABLE batches DROP COLUMN max_ts;
