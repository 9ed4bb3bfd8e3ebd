-- Batches write small chunks: a batch holds a few samples of each of many GPUs. The store's
-- compactor merges a GPU's small chunks into full ones and seals them; the partial index
-- finds the GPUs with unsealed chunks without reading the sealed bulk. Existing chunks start
-- unsealed, so the compactor packs them too.
ALTER TABLE chunks ADD COLUMN sealed boolean NOT NULL DEFAULT false;
CREATE INDEX chunks_unsealed_idx ON chunks (gpu_id) INCLUDE (samples) WHERE NOT sealed;
