-- Samples move into chunks: one row per run of one GPU's samples (at most 128, spanning less
-- than a minute), packed by the store (adapters/sqlstore/chunk.go). A row holds as many of a GPU's samples as
-- a batch brings, so there are several to a hundred times fewer rows and index entries than
-- with a row per sample: faster writes and window reads.
CREATE TABLE chunks (
    id      bigint      GENERATED ALWAYS AS IDENTITY,
    gpu_id  integer     NOT NULL,
    min_ts  timestamptz NOT NULL,
    max_ts  timestamptz NOT NULL,
    samples integer     NOT NULL,
    data    bytea       NOT NULL
);
-- Chunks are small (under the TOAST threshold) and already packed: never compress them.
ALTER TABLE chunks ALTER COLUMN data SET STORAGE EXTERNAL;
-- Ascending reads walk chunks by start, descending reads by end; id breaks ties (it is not a
-- primary key: nothing looks a chunk up by id, and a third index cost a third of the writes).
CREATE INDEX chunks_gpu_min_ts_idx ON chunks (gpu_id, min_ts, id);
CREATE INDEX chunks_gpu_max_ts_idx ON chunks (gpu_id, max_ts, id);

-- Which GPU reports which metric: the latest value of each is found without reading a GPU's
-- whole history.
CREATE TABLE gpu_metrics (
    gpu_id    integer NOT NULL,
    metric_id integer NOT NULL,
    PRIMARY KEY (gpu_id, metric_id)
);
INSERT INTO gpu_metrics SELECT DISTINCT gpu_id, metric_id FROM samples;

-- Rows of the old layout are packed into chunks by the store when it opens, then dropped.
ALTER TABLE samples RENAME TO legacy_samples;
