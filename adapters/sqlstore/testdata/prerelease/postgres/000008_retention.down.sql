DROP INDEX batches_max_ts_idx;
DROP INDEX chunks_max_ts_brin;
DROP TABLE pruned;
