-- Chunks cannot be unpacked in SQL: going down keeps only what was never converted.
ALTER TABLE IF EXISTS legacy_samples RENAME TO samples;
CREATE TABLE IF NOT EXISTS samples (
    gpu_id    integer          NOT NULL,
    metric_id integer          NOT NULL,
    ts        timestamptz      NOT NULL,
    value     double precision NOT NULL,
    container text,
    pod       text,
    namespace text
);
CREATE INDEX IF NOT EXISTS samples_gpu_ts_idx ON samples (gpu_id, ts);
DROP TABLE gpu_metrics;
DROP TABLE chunks;
