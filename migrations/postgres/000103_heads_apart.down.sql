-- One table again, partitioned by time, the head chunks in it.
SELECT setval(pg_get_serial_sequence('chunks', 'id'), coalesce((SELECT max(id) FROM chunks), 0) + 1, false);
ALTER TABLE chunks DETACH PARTITION chunks_blocks;
ALTER TABLE chunks_blocks ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY;
SELECT setval(pg_get_serial_sequence('chunks_blocks', 'id'), nextval(pg_get_serial_sequence('chunks', 'id')), false);
INSERT INTO chunks_blocks OVERRIDING SYSTEM VALUE SELECT * FROM chunks_heads;
DROP VIEW samples;
DROP TABLE chunks; -- and chunks_heads
ALTER TABLE chunks_blocks RENAME TO chunks;
ALTER INDEX chunks_blocks_gpu_min_ts_idx RENAME TO chunks_gpu_min_ts_idx;
ALTER INDEX chunks_blocks_gpu_max_ts_idx RENAME TO chunks_gpu_max_ts_idx;
ALTER INDEX chunks_blocks_max_ts_brin RENAME TO chunks_max_ts_brin;
CREATE INDEX chunks_unsealed_idx ON chunks (gpu_id) INCLUDE (samples, min_ts, max_ts) WHERE NOT sealed;
CREATE VIEW samples AS
SELECT timestamptz 'epoch' + p.ts * interval '1 microsecond' AS time,
       g.uuid, g.gpu_instance, g.hostname, g.gpu_index, g.device, g.model_name,
       m.name AS metric, p.value, p.container, p.pod, p.namespace
FROM chunks c
JOIN gpus g ON g.id = c.gpu_id
CROSS JOIN LATERAL telemetry_chunk_points(c.data) p
JOIN metrics m ON m.id = p.metric_id;
