-- Retention deletes chunks and batches whose samples are all older than its cutoff. What it
-- deleted of each is counted here, so that the stats stay a sum over batches, kept exact.
CREATE TABLE pruned (
    id            integer PRIMARY KEY CHECK (id = 1),
    batch_samples bigint  NOT NULL,
    chunk_samples bigint  NOT NULL
);
INSERT INTO pruned VALUES (1, 0, 0);
-- Chunks arrive in time order, so a BRIN index's few pages of ranges find the old ones, at
-- next to no cost to writes. Batches are a row per thousands of samples: a B-tree, which
-- also finds the newest sample at once.
CREATE INDEX chunks_max_ts_brin ON chunks USING brin (max_ts);
CREATE INDEX batches_max_ts_idx ON batches (max_ts);
