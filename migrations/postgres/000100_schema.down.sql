DROP FUNCTION telemetry_samples(timestamptz, timestamptz);
DROP VIEW samples;
DROP FUNCTION telemetry_chunk_points(bytea);
DROP FUNCTION telemetry_float8(bytea, integer);
DROP TABLE chunks; -- and its partitions
DROP TABLE pruned;
DROP TABLE batches;
DROP TABLE gpu_metrics;
DROP TABLE metrics;
DROP TABLE gpus;
