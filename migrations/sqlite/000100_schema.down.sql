DROP TABLE chunks;
DROP TABLE pruned;
DROP TABLE batches;
DROP TABLE gpu_metrics;
DROP TABLE metrics;
DROP TABLE gpus;
