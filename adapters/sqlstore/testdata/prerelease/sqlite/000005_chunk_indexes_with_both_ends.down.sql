DROP INDEX chunks_gpu_min_ts_idx;
DROP INDEX chunks_gpu_max_ts_idx;
CREATE INDEX chunks_gpu_min_ts_idx ON chunks (gpu_id, min_ts);
CREATE INDEX chunks_gpu_max_ts_idx ON chunks (gpu_id, max_ts);
