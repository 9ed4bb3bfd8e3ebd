-- Blocks (see postgres/000010_blocks.up.sql): SQLite compacts too now, so its compactor
-- finds head chunks by a partial index, as PostgreSQL's does, holding what it plans with:
-- without one it would read the whole table, blocks and all. SQLite compresses nothing.
CREATE INDEX chunks_unsealed_idx ON chunks (gpu_id, samples, min_ts, max_ts) WHERE sealed = 0;
