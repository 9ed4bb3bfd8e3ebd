-- The schema of the embedded store, as postgres/000100_schema.up.sql but for what SQLite
-- lacks: no partitions (retention deletes rows and gives the pages back by incremental
-- auto-vacuum, store.go), no compression, no procedural language for a samples view.
-- Times are Unix microseconds, PostgreSQL's timestamptz resolution, so that both stores
-- answer alike. Databases made by the pre-release versions (1 to 11) are refused.
CREATE TABLE gpus (
    id                   INTEGER PRIMARY KEY,
    uuid                 TEXT    NOT NULL,
    gpu_instance         TEXT    NOT NULL DEFAULT '',
    gpu_instance_profile TEXT    NOT NULL DEFAULT '',
    hostname             TEXT    NOT NULL,
    gpu_index            INTEGER NOT NULL,
    device               TEXT    NOT NULL,
    model_name           TEXT    NOT NULL,
    driver_version       TEXT    NOT NULL,
    pci_bus_id           TEXT    NOT NULL DEFAULT '',
    labels               TEXT    NOT NULL DEFAULT '{}',
    UNIQUE (uuid, gpu_instance)
);
CREATE INDEX gpus_listing_idx ON gpus (hostname, gpu_index, uuid);

CREATE TABLE metrics (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE gpu_metrics (
    gpu_id    INTEGER NOT NULL,
    metric_id INTEGER NOT NULL,
    PRIMARY KEY (gpu_id, metric_id)
) WITHOUT ROWID;

CREATE TABLE batches (
    id        TEXT    PRIMARY KEY,
    samples   INTEGER NOT NULL,
    stored_at INTEGER NOT NULL,
    min_ts    INTEGER,
    max_ts    INTEGER
);
CREATE INDEX batches_max_ts_idx ON batches (max_ts);

CREATE TABLE pruned (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    batch_samples INTEGER NOT NULL,
    chunk_samples INTEGER NOT NULL
);
INSERT INTO pruned VALUES (1, 0, 0);

CREATE TABLE chunks (
    id      INTEGER PRIMARY KEY,
    gpu_id  INTEGER NOT NULL,
    min_ts  INTEGER NOT NULL,
    max_ts  INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    data    BLOB    NOT NULL,
    sealed  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX chunks_gpu_min_ts_idx ON chunks (gpu_id, min_ts, max_ts);
CREATE INDEX chunks_gpu_max_ts_idx ON chunks (gpu_id, max_ts, min_ts);
CREATE INDEX chunks_unsealed_idx ON chunks (gpu_id, samples, min_ts, max_ts) WHERE sealed = 0;
CREATE INDEX chunks_max_ts_idx ON chunks (max_ts);
