-- Chunks partitioned by the time of their last sample, so that retention drops whole
-- partitions — their space goes back to the disk at once — instead of deleting rows whose
-- space PostgreSQL would only reuse. The store creates the partitions of the hours to come
-- (adapters/sqlstore/partitions.go); anything else, an import of last year's file say,
-- goes to chunks_default, which retention prunes row by row.
DROP VIEW samples; -- it names the table being replaced; recreated below as it was
ALTER TABLE chunks RENAME TO chunks_unpartitioned;
ALTER INDEX chunks_gpu_min_ts_idx RENAME TO chunks_unpartitioned_min_ts_idx;
ALTER INDEX chunks_gpu_max_ts_idx RENAME TO chunks_unpartitioned_max_ts_idx;
ALTER INDEX chunks_unsealed_idx RENAME TO chunks_unpartitioned_unsealed_idx;
ALTER INDEX chunks_max_ts_brin RENAME TO chunks_unpartitioned_brin;
CREATE TABLE chunks (
    id      bigint      GENERATED ALWAYS AS IDENTITY,
    gpu_id  integer     NOT NULL,
    min_ts  timestamptz NOT NULL,
    max_ts  timestamptz NOT NULL,
    samples integer     NOT NULL,
    data    bytea       NOT NULL,
    sealed  boolean     NOT NULL DEFAULT false
) PARTITION BY RANGE (max_ts);
ALTER TABLE chunks ALTER COLUMN data SET STORAGE MAIN; -- see migration 10
CREATE TABLE chunks_default PARTITION OF chunks DEFAULT;
INSERT INTO chunks (id, gpu_id, min_ts, max_ts, samples, data, sealed) OVERRIDING SYSTEM VALUE
SELECT id, gpu_id, min_ts, max_ts, samples, data, sealed FROM chunks_unpartitioned;
SELECT setval(pg_get_serial_sequence('chunks', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM chunks), false);
DROP TABLE chunks_unpartitioned;
CREATE INDEX chunks_gpu_min_ts_idx ON chunks (gpu_id, min_ts, max_ts);
CREATE INDEX chunks_gpu_max_ts_idx ON chunks (gpu_id, max_ts, min_ts);
-- What the compactor plans with, without reading the rows.
CREATE INDEX chunks_unsealed_idx ON chunks (gpu_id) INCLUDE (samples, min_ts, max_ts) WHERE NOT sealed;
CREATE INDEX chunks_max_ts_brin ON chunks USING brin (max_ts);

CREATE VIEW samples AS
SELECT timestamptz 'epoch' + p.ts * interval '1 microsecond' AS time,
       g.uuid, g.gpu_instance, g.hostname, g.gpu_index, g.device, g.model_name,
       m.name AS metric, p.value, p.container, p.pod, p.namespace
FROM chunks c
JOIN gpus g ON g.id = c.gpu_id
CROSS JOIN LATERAL telemetry_chunk_points(c.data) p
JOIN metrics m ON m.id = p.metric_id;
