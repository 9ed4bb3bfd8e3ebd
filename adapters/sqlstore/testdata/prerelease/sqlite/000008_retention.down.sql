DROP INDEX batches_max_ts_idx;
DROP INDEX chunks_max_ts_idx;
DROP TABLE pruned;
