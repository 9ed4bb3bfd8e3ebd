-- See postgres/000003_chunks.up.sql; Unix microseconds here.
CREATE TABLE chunks (
    id      INTEGER PRIMARY KEY,
    gpu_id  INTEGER NOT NULL,
    min_ts  INTEGER NOT NULL,
    max_ts  INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    data    BLOB    NOT NULL
);
CREATE INDEX chunks_gpu_min_ts_idx ON chunks (gpu_id, min_ts);
CREATE INDEX chunks_gpu_max_ts_idx ON chunks (gpu_id, max_ts);

CREATE TABLE gpu_metrics (
    gpu_id    INTEGER NOT NULL,
    metric_id INTEGER NOT NULL,
    PRIMARY KEY (gpu_id, metric_id)
) WITHOUT ROWID;
INSERT INTO gpu_metrics SELECT DISTINCT gpu_id, metric_id FROM samples;

ALTER TABLE samples RENAME TO legacy_samples;
