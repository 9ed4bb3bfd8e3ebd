-- See postgres/000002_batch_time_span.up.sql; Unix microseconds here.
ALTER TABLE batches ADD COLUMN min_ts INTEGER;
ALTER TABLE batches ADD COLUMN max_ts INTEGER;
