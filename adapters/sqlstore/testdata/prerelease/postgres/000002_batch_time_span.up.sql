-- The time span of each batch's samples: the oldest and newest sample of the store come from
-- this small table instead of a scan of every sample.
ALTER TABLE batches ADD COLUMN min_ts timestamptz, ADD COLUMN max_ts timestamptz;
