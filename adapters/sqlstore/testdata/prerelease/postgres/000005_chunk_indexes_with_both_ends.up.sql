-- Chunks may now span up to 15 minutes, so that a chunk holds a full 128 samples of GPUs
-- scraped every 30 or 60 s. A reader looking for samples from t on scans the chunks starting
-- after t - 15 min and keeps those ending at or after t: with both ends in the index, the
-- chunks it skips cost an index entry each, not a heap page. Ascending reads walk the first
-- index, descending reads the second; the order among chunks starting (ending) together does
-- not matter to readers.
DROP INDEX chunks_gpu_min_ts_idx;
DROP INDEX chunks_gpu_max_ts_idx;
CREATE INDEX chunks_gpu_min_ts_idx ON chunks (gpu_id, min_ts, max_ts);
CREATE INDEX chunks_gpu_max_ts_idx ON chunks (gpu_id, max_ts, min_ts);
