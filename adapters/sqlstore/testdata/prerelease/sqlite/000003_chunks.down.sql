-- Chunks cannot be unpacked in SQL: going down keeps only what was never converted.
CREATE TABLE IF NOT EXISTS legacy_samples (
    gpu_id    INTEGER NOT NULL,
    metric_id INTEGER NOT NULL,
    ts        INTEGER NOT NULL,
    value     REAL    NOT NULL,
    container TEXT,
    pod       TEXT,
    namespace TEXT
);
ALTER TABLE legacy_samples RENAME TO samples;
CREATE INDEX IF NOT EXISTS samples_gpu_ts_idx ON samples (gpu_id, ts);
DROP TABLE gpu_metrics;
DROP TABLE chunks;
