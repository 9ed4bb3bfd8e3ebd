-- Retention deletes chunks and batches whose samples are all older than its cutoff. What it
-- deleted of each is counted here, so that the stats stay a sum over batches, kept exact.
CREATE TABLE pruned (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    batch_samples INTEGER NOT NULL,
    chunk_samples INTEGER NOT NULL
);
INSERT INTO pruned VALUES (1, 0, 0);
CREATE INDEX chunks_max_ts_idx ON chunks (max_ts);
CREATE INDEX batches_max_ts_idx ON batches (max_ts);
