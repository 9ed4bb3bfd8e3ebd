-- Head chunks apart from blocks. Every sample is written first in a head chunk, some 17
-- bytes of it, and compaction deletes that chunk once the sample is in a block, of a byte
-- or two. In the partition of the block's time, that space stayed: no later row ever goes
-- to a past day's partition, so a day kept ten times its blocks' size on disk until a
-- VACUUM FULL. Now chunks is split by sealed: chunks_heads holds the head chunks and the
-- blocks of windows still open, whose space autovacuum hands to the next ones (and the
-- compactor gives back to the disk when it empties: adapters/sqlstore/compact.go);
-- chunks_blocks, partitioned by time as chunks was, holds sealed blocks, written once.
-- Readers still read chunks.
ALTER TABLE chunks RENAME TO chunks_blocks;
ALTER INDEX chunks_gpu_min_ts_idx RENAME TO chunks_blocks_gpu_min_ts_idx;
ALTER INDEX chunks_gpu_max_ts_idx RENAME TO chunks_blocks_gpu_max_ts_idx;
ALTER INDEX chunks_max_ts_brin RENAME TO chunks_blocks_max_ts_brin;

CREATE TABLE chunks (
    id      bigint      GENERATED ALWAYS AS IDENTITY,
    gpu_id  integer     NOT NULL,
    min_ts  timestamptz NOT NULL,
    max_ts  timestamptz NOT NULL,
    samples integer     NOT NULL,
    data    bytea       NOT NULL,
    sealed  boolean     NOT NULL DEFAULT false
) PARTITION BY LIST (sealed);
ALTER TABLE chunks ALTER COLUMN data SET STORAGE MAIN;
-- Rows come and go here all day: vacuum it as soon as a few have gone, so that their space
-- is reused rather than the table grown.
CREATE TABLE chunks_heads PARTITION OF chunks FOR VALUES IN (false)
    WITH (autovacuum_vacuum_scale_factor = 0.02, toast.autovacuum_vacuum_scale_factor = 0.02);
-- The head chunks found by the index on them, which goes once they have moved.
WITH moved AS (DELETE FROM chunks_blocks WHERE NOT sealed RETURNING *)
INSERT INTO chunks_heads OVERRIDING SYSTEM VALUE SELECT * FROM moved;
DROP INDEX chunks_unsealed_idx;
ALTER TABLE chunks_blocks ALTER COLUMN id DROP IDENTITY;
-- Attaching reads chunks_blocks once, to check that every row is sealed.
ALTER TABLE chunks ATTACH PARTITION chunks_blocks FOR VALUES IN (true);
SELECT setval(pg_get_serial_sequence('chunks', 'id'), coalesce((SELECT max(id) FROM chunks), 0) + 1, false);
-- The same indexes as before (chunks_blocks' attached to them), and what the compactor
-- plans with, on head chunks only.
CREATE INDEX chunks_gpu_min_ts_idx ON chunks (gpu_id, min_ts, max_ts);
CREATE INDEX chunks_gpu_max_ts_idx ON chunks (gpu_id, max_ts, min_ts);
CREATE INDEX chunks_max_ts_brin ON chunks USING brin (max_ts);
CREATE INDEX chunks_heads_gpu_idx ON chunks_heads (gpu_id) INCLUDE (samples, min_ts, max_ts);

-- The view named the table it read (now chunks_blocks): name chunks again.
CREATE OR REPLACE VIEW samples AS
SELECT timestamptz 'epoch' + p.ts * interval '1 microsecond' AS time,
       g.uuid, g.gpu_instance, g.hostname, g.gpu_index, g.device, g.model_name,
       m.name AS metric, p.value, p.container, p.pod, p.namespace
FROM chunks c
JOIN gpus g ON g.id = c.gpu_id
CROSS JOIN LATERAL telemetry_chunk_points(c.data) p
JOIN metrics m ON m.id = p.metric_id;
