-- See postgres/000004_sealed_chunks.up.sql; 0 and 1 here.
ALTER TABLE chunks ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;
CREATE INDEX chunks_unsealed_idx ON chunks (gpu_id, samples) WHERE sealed = 0;
